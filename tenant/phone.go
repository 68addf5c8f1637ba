package tenant

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/nyaruka/phonenumbers"
)

// DefaultRegion is the region a phone number without a leading "+" is read
// in when the caller names none: the buildings cloudkey serves first are in
// the US.
const DefaultRegion = "US"

// maxPhoneLen bounds the text handed to the parser; a real number with
// spacing fits in well under half of it.
const maxPhoneLen = 64

// NormalizeRegion returns region as an upper-case ISO 3166-1 alpha-2 code
// that has a country calling code ("us" → "US"), DefaultRegion for "", or
// an error wrapping ErrInvalidArgument.
func NormalizeRegion(region string) (string, error) {
	r := strings.ToUpper(strings.TrimSpace(region))
	if r == "" {
		return DefaultRegion, nil
	}
	if phonenumbers.GetCountryCodeForRegion(r) == 0 {
		return "", fmt.Errorf("%w: region %q is not a country code such as US or GB", ErrInvalidArgument, region)
	}
	return r, nil
}

// NormalizePhone returns raw in E.164 form ("+14155550123"). A number
// written with a leading "+" is read as international; one without as a
// number of region (DefaultRegion when ""), so in the US "(415) 555-0123",
// "415.555.0123" and "1 415 555 0123" are all "+14155550123".
//
// The number must be valid by libphonenumber's metadata (a length and
// prefix the country actually uses), not merely possible: "(555) 555-5555"
// is refused. Letters are refused rather than guessed at: an extension
// ("x12") has no place in E.164 and a contact cannot receive a text on one,
// and vanity numbers are rare in a tenant list. Errors wrap
// ErrInvalidArgument and say why for a person.
func NormalizePhone(raw, region string) (string, error) {
	region, err := NormalizeRegion(region)
	if err != nil {
		return "", err
	}
	e164, warn, bad := normalizePhone(raw, region)
	if bad == "" && warn != "" {
		bad = warn
	}
	if bad != "" {
		return "", fmt.Errorf("%w: %s", ErrInvalidArgument, bad)
	}
	return e164, nil
}

// normalizePhone is NormalizePhone for a normalised region; it returns why
// raw is refused in words for a bad-row report. A number that is possible
// (a length the country uses) but not valid (an unassigned prefix, such
// as the 555 exchange of "(555) 555-5555", the HqO seed's own example) is
// returned in E.164 with warn saying so: an import keeps it, with a
// warning for its line, rather than refusing the whole file over a
// placeholder; NormalizePhone refuses it.
func normalizePhone(raw, region string) (e164, warn, bad string) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", "", "phone number is empty"
	}
	if len(s) > maxPhoneLen {
		return "", "", fmt.Sprintf("phone number is longer than %d characters", maxPhoneLen)
	}
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9', r == '(', r == ')', r == '.', r == '/',
			unicode.IsSpace(r), unicode.Is(unicode.Pd, r):
		case r == '+' && i == 0:
		case unicode.IsLetter(r):
			return "", "", fmt.Sprintf("phone %q has letters: extensions and vanity numbers are not supported", s)
		default:
			return "", "", fmt.Sprintf("phone %q has %q, which is not part of a phone number", s, r)
		}
	}
	n, err := phonenumbers.Parse(s, region)
	if err != nil {
		return "", "", fmt.Sprintf("phone %q: %v", s, err)
	}
	if validNumber(n, region) {
		return phonenumbers.Format(n, phonenumbers.E164), "", ""
	}
	what := "a valid number"
	if !strings.HasPrefix(s, "+") {
		what = "a valid " + region + " number (write other countries' numbers with + and the country code)"
	}
	// A local-only length ("555-5555", no area code) is not kept: it has
	// no E.164 form anyone could dial.
	if phonenumbers.IsPossibleNumberWithReason(n) == phonenumbers.IS_POSSIBLE {
		e := phonenumbers.Format(n, phonenumbers.E164)
		return e, fmt.Sprintf("phone %q is not %s, only a possible one: kept as %s, but texts to it may not arrive", s, what, e), ""
	}
	return "", "", fmt.Sprintf("phone %q is not %s", s, what)
}

// validNumber checks n against region first: that is the common case and
// much cheaper than finding the region among all that share a calling code
// (25 for +1). A number of a neighbour sharing the code (Canada in a US
// file) falls through to the full check.
func validNumber(n *phonenumbers.PhoneNumber, region string) bool {
	if int(n.GetCountryCode()) == phonenumbers.GetCountryCodeForRegion(region) && phonenumbers.IsValidNumberForRegion(n, region) {
		return true
	}
	return phonenumbers.IsValidNumber(n)
}
