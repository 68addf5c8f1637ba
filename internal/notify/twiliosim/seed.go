package twiliosim

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Account is one Twilio account the simulator serves.
type Account struct {
	// SID is the account SID, "AC" and 32 hex digits.
	SID string
	// AuthToken is the account's auth token: the Basic password and the
	// key of the callbacks' signatures.
	AuthToken string
	// Numbers are the account's phone numbers (E.164), the valid From.
	Numbers []string
	// MessagingServices are the account's Messaging Service SIDs ("MG…").
	MessagingServices []string
}

// Seed is what the simulator starts with: its accounts and how it treats
// recipient numbers. A number in none of the lists is a mobile that
// receives every message.
type Seed struct {
	Accounts []Account
	// Invalid numbers are refused with 21211, as numbers Twilio finds not
	// to exist are.
	Invalid []string
	// Unsubscribed numbers replied STOP: refused with 21610.
	Unsubscribed []string
	// NotMobile numbers (landlines) are refused with 21614.
	NotMobile []string
	// Undelivered numbers end undelivered, after sent, with the error code
	// given (30003 unreachable handset, 30006 landline or unreachable
	// carrier, 30007 carrier violation).
	Undelivered map[string]int
	// Failed numbers end failed, from queued, with the error code given.
	Failed map[string]int
	// StepDelay moves each message one status further after this delay;
	// zero leaves them where they are until Advance or Settle.
	StepDelay time.Duration
}

var (
	accountSIDPattern = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	serviceSIDPattern = regexp.MustCompile(`^MG[0-9a-fA-F]{32}$`)
	e164              = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)
)

// Validate reports an account without a well-formed SID or a token, a
// duplicate account, a malformed number or Messaging Service SID, or a
// delivery failure code that is not one of Twilio's 30xxx.
func (s Seed) Validate() error {
	if len(s.Accounts) == 0 {
		return errors.New("seed has no account")
	}
	seen := map[string]bool{}
	for _, a := range s.Accounts {
		if !accountSIDPattern.MatchString(a.SID) {
			return fmt.Errorf("account SID %q is not AC and 32 hex digits", a.SID)
		}
		if seen[a.SID] {
			return fmt.Errorf("account %s appears twice", a.SID)
		}
		seen[a.SID] = true
		if a.AuthToken == "" {
			return fmt.Errorf("account %s has no auth token", a.SID)
		}
		for _, n := range a.Numbers {
			if !e164.MatchString(n) {
				return fmt.Errorf("account %s: number %q is not E.164", a.SID, n)
			}
		}
		for _, m := range a.MessagingServices {
			if !serviceSIDPattern.MatchString(m) {
				return fmt.Errorf("account %s: Messaging Service SID %q is not MG and 32 hex digits", a.SID, m)
			}
		}
	}
	for _, codes := range []map[string]int{s.Undelivered, s.Failed} {
		for n, c := range codes {
			if c < 30001 || c > 30999 {
				return fmt.Errorf("delivery failure code %d for %q is not a Twilio 30xxx code", c, n)
			}
		}
	}
	if s.StepDelay < 0 {
		return errors.New("step delay must not be negative")
	}
	return nil
}

// The demo account, for `go run`, the browser tests and the examples.
const (
	DemoAccountSID          = "AC0123456789abcdef0123456789abcdef"
	DemoAuthToken           = "demo-twilio-auth-token"
	DemoFrom                = "+15005550006"
	DemoMessagingServiceSID = "MG0123456789abcdef0123456789abcdef"

	// Recipients the demo seed treats specially (Twilio's magic test
	// numbers where Twilio has one: +15005550001 invalid, +15005550004
	// blocked/unsubscribed, +15005550009 not mobile).
	DemoInvalidNumber      = "+15005550001"
	DemoUnsubscribedNumber = "+15005550004"
	DemoLandlineNumber     = "+15005550009"
	DemoUnreachableNumber  = "+15005550030" // undelivered, 30006
	DemoFilteredNumber     = "+15005550031" // undelivered, 30007
)

// DemoSeed is the demo account, its number and Messaging Service, and the
// Demo*Number recipients; messages move every 200 ms.
func DemoSeed() Seed {
	return Seed{
		Accounts: []Account{{
			SID: DemoAccountSID, AuthToken: DemoAuthToken,
			Numbers: []string{DemoFrom}, MessagingServices: []string{DemoMessagingServiceSID},
		}},
		Invalid:      []string{DemoInvalidNumber},
		Unsubscribed: []string{DemoUnsubscribedNumber},
		NotMobile:    []string{DemoLandlineNumber},
		Undelivered:  map[string]int{DemoUnreachableNumber: 30006, DemoFilteredNumber: 30007},
		StepDelay:    200 * time.Millisecond,
	}
}
