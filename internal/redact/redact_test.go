package redact

import "testing"

func TestEmail(t *testing.T) {
	for in, want := range map[string]string{
		"alice@example.com":   "a***@example.com",
		"a@x.io":              "a***@x.io",
		"first.last+tag@b.co": "f***@b.co",
		"not an email":        "***",
		"@example.com":        "***",
		"":                    "***",
	} {
		if got := Email(in); got != want {
			t.Errorf("Email(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestText(t *testing.T) {
	const guest = "Qx7pV2sQmB0c9k3hYtR4uW8eZ1aL5nJ6oP2iU7yT3rE" // 43 characters, a guest token
	for _, tt := range []struct{ in, want string }{
		{"nothing to hide, pass p-ABCDEFGH12345678", "nothing to hide, pass p-ABCDEFGH12345678"},
		{"cache: read alice@example.com: i/o timeout", "cache: read a***@example.com: i/o timeout"},
		{"ck:v1:acct:{bob.smith@mail.example.org}", "ck:v1:acct:{b***@mail.example.org}"},
		{"link sent to ada@example.com.", "link sent to a***@example.com."},
		{"two: a@b.co and c@d.co", "two: a***@b.co and c***@d.co"},
		{`Post "http://127.0.0.1:1/tokens/cloudKeyUnlockTokens/` + guest + `/use": refused`, `Post "http://127.0.0.1:1/tokens/cloudKeyUnlockTokens/Qx7p…/use": refused`},
		{"Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJlbWFpbCI6ImFAYi5jbyIsImV4cCI6MX0.c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJl", "Bearer eyJh….eyJl….c2ln…"},
		{"key ckadm_" + guest, "key ckad…"},
		{"generateCloudKeyUnlockToken", "generateCloudKeyUnlockToken"}, // a long word, no digit
		{"AbcdefghijklmnopqrstuvwxyzABCDEFGH", "Abcd…"},                // 34, both cases: a secret without a digit
		{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is unset", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is unset"},
		{"at@ sign alone", "at@ sign alone"},
	} {
		if got := Text(tt.in); got != tt.want {
			t.Errorf("Text(%q)\n = %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

func TestTextDoesNotAllocateWhenClean(t *testing.T) {
	s := "visitor: event handled, pass p-ABCDEFGH12345678, entry 101"
	if n := testing.AllocsPerRun(100, func() { _ = Text(s) }); n != 0 {
		t.Errorf("Text on clean text: %v allocations", n)
	}
}
