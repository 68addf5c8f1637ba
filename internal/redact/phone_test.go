package redact

import "testing"

func TestPhone(t *testing.T) {
	for in, want := range map[string]string{
		"+14155550100":      "+*********00",
		"+33 6 12 34 56 78": "+** * ** ** ** 78",
		"12":                "***",
		"":                  "***",
	} {
		if got := Phone(in); got != want {
			t.Errorf("Phone(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPhones(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"Invalid 'To' Phone Number: +14155550100", "Invalid 'To' Phone Number: +*********00"},
		{"to +1 (415) 555-0100.", "to +* (***) ***-**00."},
		{"error 21211 after 3 attempts, port 8080", "error 21211 after 3 attempts, port 8080"},
		{"two: +33612345678 and 0612345678", "two: +*********78 and ********78"},
		{"no digits here", "no digits here"},
		{"date 2026-12-02", "date ****-**-02"}, // over-redacted: a dashed date looks like a number
	} {
		if got := Phones(tt.in); got != tt.want {
			t.Errorf("Phones(%q)\n = %q\nwant %q", tt.in, got, tt.want)
		}
	}
}
