package tenant

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizePhone(t *testing.T) {
	tests := []struct {
		raw, region string
		want        string // "" when refused
		why         string // in the error
	}{
		{"(415) 555-0123", "", "+14155550123", ""},
		{"415.555.0123", "US", "+14155550123", ""},
		{"1 415 555 0123", "us", "+14155550123", ""},
		{"+1-415-555-0123", "US", "+14155550123", ""},
		{"415\u00a0555\u20130123", "US", "+14155550123", ""}, // no-break space, en dash
		{"(416) 555-0123", "US", "+14165550123", ""},         // Canada shares +1
		{"+44 20 7946 0958", "US", "+442079460958", ""},
		{"020 7946 0958", "GB", "+442079460958", ""},
		{"06 12 34 56 78", "FR", "+33612345678", ""},
		{"(555) 555-5555", "US", "", "not a valid US number"}, // possible, not valid: refused here, a warning in an import
		{"020 7946 0958", "US", "", "not a valid US number"},
		{"+1 555 555 5555", "US", "", "not a valid number"},
		{"12", "US", "", `phone "12"`},
		{"415-555-0123 x12", "US", "", "extensions"},
		{"1-800-FLOWERS", "US", "", "letters"},
		{"415#555#0123", "US", "", `has '#'`},
		{"41+5550123", "US", "", `has '+'`},
		{strings.Repeat("1", 65), "US", "", "longer than 64"},
		{"  ", "US", "", "empty"},
		{"4155550123", "XX", "", "region"},
	}
	for _, tt := range tests {
		got, err := NormalizePhone(tt.raw, tt.region)
		if tt.want != "" {
			if got != tt.want || err != nil {
				t.Errorf("NormalizePhone(%q, %q) = %q, %v; want %q", tt.raw, tt.region, got, err, tt.want)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), tt.why) {
			t.Errorf("NormalizePhone(%q, %q) = %q, %v; want ErrInvalidArgument saying %q", tt.raw, tt.region, got, err, tt.why)
		}
	}
}

func BenchmarkNormalizePhone(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NormalizePhone("(415) 555-0123", "US"); err != nil {
			b.Fatal(err)
		}
	}
}
