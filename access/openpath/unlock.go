package openpath

import (
	"context"
	"fmt"
)

// Unlock opens entryID with the user's cloud-key credential
// (POST .../credentials/{credentialId}/cloudKeyEntryUnlock, 204 on
// success). Openpath authorizes it itself: a suspended user, an entry not
// assigned or a credential that is not the user's cloud key is answered
// 403 (access.ErrDenied). The call is never repeated, except after a 401,
// which Openpath answers without processing it.
//
// Entry ids are strings in cloudkey and numbers in Openpath; one that is
// not a positive integer is refused (ErrInvalidID) without a request.
func (c *Client) Unlock(ctx context.Context, userID, credentialID, entryID string) error {
	for _, id := range [...]struct{ kind, value string }{
		{"user id", userID}, {"credential id", credentialID}, {"entry id", entryID},
	} {
		if err := checkID(id.kind, id.value); err != nil {
			return fmt.Errorf("openpath: unlock: %w", err)
		}
	}
	// entryID is digits only, so it is already a JSON number.
	body := make([]byte, 0, len(`{"entryId":}`)+len(entryID))
	body = append(body, `{"entryId":`...)
	body = append(body, entryID...)
	body = append(body, '}')
	rq := call{
		op:     "cloud-key unlock",
		method: "POST",
		path:   "/users/" + userID + "/credentials/" + credentialID + "/cloudKeyEntryUnlock",
		body:   body,
	}
	if err := c.do(ctx, rq, nil); err != nil {
		return fmt.Errorf("openpath: unlock entry %s for user %s: %w", entryID, userID, err)
	}
	return nil
}
