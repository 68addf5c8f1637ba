package visitor

import "testing"

// The manager's view sums up a link's messages: one refused or
// undelivered message makes the link failed, with its reason and code.
func TestDeliveryOf(t *testing.T) {
	tests := []struct {
		name    string
		msgs    []sent
		want    LinkState
		channel string
		err     string
	}{
		{"email handed over", []sent{{Channel: ChannelEmail, Status: DeliveryHandedOver}}, LinkSent, "email", ""},
		{"both, sms delivered", []sent{{Channel: ChannelEmail, Status: DeliveryHandedOver}, {Channel: ChannelSMS, Status: "delivered"}}, LinkSent, "email,sms", ""},
		{"sms refused", []sent{{Channel: ChannelSMS, Status: DeliveryFailed, ErrorCode: 21211, Reason: "not a valid phone number"}}, LinkFailed, "sms", "sms: not a valid phone number (21211)"},
		{"sms undelivered, email sent", []sent{{Channel: ChannelEmail, Status: DeliveryHandedOver}, {Channel: ChannelSMS, Status: "undelivered", ErrorCode: 30007, Reason: "filtered by the carrier"}}, LinkFailed, "email,sms", "sms: filtered by the carrier (30007)"},
		{"retrying", []sent{{Channel: ChannelSMS, Status: DeliveryRetrying}}, LinkRetrying, "sms", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := deliveryOf(tc.msgs)
			if d.State != tc.want || d.Channel != tc.channel || d.Error != tc.err {
				t.Errorf("deliveryOf = %+v, want %s %q %q", d, tc.want, tc.channel, tc.err)
			}
		})
	}
}
