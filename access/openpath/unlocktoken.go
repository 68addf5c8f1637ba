package openpath

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/cloudkey/cloudkey/access"
)

// ErrInvalidToken: an unlock token cloudkey was given is not one Openpath
// could have issued (empty, too long, or with characters a JWT never has).
// The request is not sent.
var ErrInvalidToken = errors.New("invalid Openpath unlock token")

const (
	// maxTokenEntries bounds the entries one unlock token covers.
	maxTokenEntries = 100
	// maxDescription is the longest description Openpath accepts.
	maxDescription = 100
	// maxTokenLen bounds an unlock token; Openpath's are JWTs of a few
	// hundred bytes.
	maxTokenLen = 4096
)

type entryDatum struct {
	EntryID json.Number `json:"entryId"`
	UILabel string      `json:"uiLabel,omitempty"`
}

// IssueUnlockToken issues an unlock token on the service account's cloud
// key (POST .../users/{userId}/credentials/{credentialId}/generateCloudKeyUnlockToken,
// 201) covering req.Entries from req.NotBefore until req.Expires. Openpath
// enforces that window and the entry list when the token is used. The
// service account's user and cloud key are looked up (and the key created)
// on first use and cached; a 403 or 404 drops the cache so that the next
// call looks again, but this call is not repeated.
func (c *Client) IssueUnlockToken(ctx context.Context, req access.UnlockTokenRequest) (access.UnlockToken, error) {
	body, err := tokenBody(req)
	if err != nil {
		return access.UnlockToken{}, fmt.Errorf("openpath: issue unlock token: %w", err)
	}
	key, err := c.serviceKeyFor(ctx)
	if err != nil {
		return access.UnlockToken{}, fmt.Errorf("openpath: issue unlock token: %w", err)
	}
	var ans struct {
		Data struct {
			Token string `json:"cloudKeyUnlockToken"`
		} `json:"data"`
	}
	rq := call{
		op:     "generate unlock token",
		method: "POST",
		path:   "/users/" + key.userID + "/credentials/" + key.credID + "/generateCloudKeyUnlockToken",
		body:   body,
	}
	if err := c.do(ctx, rq, &ans); err != nil {
		if errors.Is(err, access.ErrDenied) || errors.Is(err, access.ErrNotFound) {
			c.forgetServiceKey(key)
		}
		return access.UnlockToken{}, fmt.Errorf("openpath: issue unlock token for user %s: %w", key.userID, err)
	}
	if ans.Data.Token == "" {
		return access.UnlockToken{}, errors.New("openpath: issue unlock token: the answer has no cloudKeyUnlockToken")
	}
	return access.UnlockToken{Token: ans.Data.Token, NotBefore: req.NotBefore, Expires: req.Expires}, nil
}

// tokenBody validates req and encodes it as Openpath's request body.
func tokenBody(req access.UnlockTokenRequest) ([]byte, error) {
	if len(req.Entries) == 0 || len(req.Entries) > maxTokenEntries {
		return nil, fmt.Errorf("a token covers 1 to %d entries, not %d", maxTokenEntries, len(req.Entries))
	}
	if !req.NotBefore.IsZero() && !req.Expires.IsZero() && !req.Expires.After(req.NotBefore) {
		return nil, fmt.Errorf("expires %s is not after notBefore %s", req.Expires, req.NotBefore)
	}
	data := make([]entryDatum, len(req.Entries))
	for i, e := range req.Entries {
		if err := checkID("entry id", e.ID); err != nil {
			return nil, err
		}
		data[i] = entryDatum{EntryID: json.Number(e.ID), UILabel: e.Label}
	}
	var b struct {
		EntryData   []entryDatum `json:"entryData"`
		NotBefore   *string      `json:"notBefore,omitempty"`
		Expires     *string      `json:"expires,omitempty"`
		Description *string      `json:"description,omitempty"`
	}
	b.EntryData = data
	if !req.NotBefore.IsZero() {
		s := timestamp(req.NotBefore)
		b.NotBefore = &s
	}
	if !req.Expires.IsZero() {
		s := timestamp(req.Expires)
		b.Expires = &s
	}
	if req.Description != "" {
		s := truncateRunes(req.Description, maxDescription)
		b.Description = &s
	}
	return json.Marshal(b)
}

// timestamp formats t as Openpath writes times (JavaScript's toISOString),
// to the millisecond; cloudkey's windows are whole seconds, so nothing is
// lost.
func timestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n])
}

// UseUnlockToken opens entryID with an unlock token
// (POST /tokens/cloudKeyUnlockTokens/{token}/use with {"entryId": n}, 204).
// The call needs no session token: the unlock token is the credential.
// Openpath refuses it (403, access.ErrDenied) outside the token's window
// or for an entry it does not cover. Like Unlock, it is never repeated, and
// errors never include the token.
func (c *Client) UseUnlockToken(ctx context.Context, token, entryID string) error {
	if err := checkToken(token); err != nil {
		return fmt.Errorf("openpath: use unlock token: %w", err)
	}
	if err := checkID("entry id", entryID); err != nil {
		return fmt.Errorf("openpath: use unlock token: %w", err)
	}
	const op = "use unlock token"
	body := []byte(`{"entryId":` + entryID + `}`)
	err := c.guarded(ctx, op, attemptStart(ctx), func() error {
		_, err := c.exchange(ctx, op, "POST", c.base+"/tokens/cloudKeyUnlockTokens/"+token+"/use", "", body, nil, false)
		return err
	})
	if err != nil {
		return fmt.Errorf("openpath: unlock entry %s with an unlock token: %w", entryID, err)
	}
	return nil
}

// checkToken accepts what a JWT (or any URL-safe token) is made of, so the
// token can go into the path unescaped and cannot change it.
func checkToken(token string) error {
	if token == "" || len(token) > maxTokenLen {
		return fmt.Errorf("%w: length %d", ErrInvalidToken, len(token))
	}
	for i := 0; i < len(token); i++ {
		b := token[i]
		ok := b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_' || b == '.' || b == '~'
		if !ok {
			return fmt.Errorf("%w: character %s at %d", ErrInvalidToken, strconv.QuoteRune(rune(b)), i)
		}
	}
	return nil
}
