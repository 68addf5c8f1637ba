package openpath

import (
	"github.com/cloudkey/cloudkey/access"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
)

const (
	// cloudKeyModel is the modelName of the cloud-key credential type. Its
	// numeric id differs between orgs, so it is looked up by this name.
	cloudKeyModel = "cloudKey"
	// cloudKeyName names the credentials cloudkey creates.
	cloudKeyName = "cloudkey"
)

type credentialItem struct {
	ID             int64 `json:"id"`
	CredentialType struct {
		ID        int64  `json:"id"`
		ModelName string `json:"modelName"`
	} `json:"credentialType"`
}

// EnsureCloudKey returns the id of u's cloud-key credential, creating one
// when the user has none. Two concurrent calls for the same user may both
// create one; callers resolve a user once at a time (the cache
// single-flights it).
func (c *Client) EnsureCloudKey(ctx context.Context, u access.User) (string, error) {
	return c.cloudKey(ctx, u.ID)
}

// cloudKey is EnsureCloudKey by user id.
func (c *Client) cloudKey(ctx context.Context, userID string) (string, error) {
	if err := checkID("user id", userID); err != nil {
		return "", fmt.Errorf("openpath: cloud key: %w", err)
	}
	path := "/users/" + userID + "/credentials"
	creds, err := listAll[credentialItem](ctx, c, "list credentials", path, url.Values{"limit": {pageSize}})
	if err != nil {
		return "", fmt.Errorf("openpath: cloud key of user %s: %w", userID, err)
	}
	for _, cr := range creds {
		if cr.CredentialType.ModelName == cloudKeyModel {
			return strconv.FormatInt(cr.ID, 10), nil
		}
	}

	typeID, err := c.cloudKeyTypeID(ctx)
	if err != nil {
		return "", fmt.Errorf("openpath: cloud key of user %s: %w", userID, err)
	}
	body, err := json.Marshal(map[string]any{
		"credentialTypeId": typeID,
		cloudKeyModel:      map[string]string{"name": cloudKeyName},
	})
	if err != nil {
		return "", fmt.Errorf("openpath: cloud key of user %s: %w", userID, err)
	}
	var created struct {
		Data struct {
			ID int64 `json:"id"`
		} `json:"data"`
	}
	if err := c.do(ctx, call{op: "create credential", method: "POST", path: path, body: body}, &created); err != nil {
		return "", fmt.Errorf("openpath: cloud key of user %s: %w", userID, err)
	}
	if created.Data.ID <= 0 {
		return "", fmt.Errorf("openpath: cloud key of user %s: create credential: the answer has no credential id", userID)
	}
	return strconv.FormatInt(created.Data.ID, 10), nil
}

// cloudKeyTypeID returns the org's cloudKey credential type id, looking it
// up once. Concurrent first calls may each look it up; the answer is the
// same.
func (c *Client) cloudKeyTypeID(ctx context.Context) (int64, error) {
	if id := c.cloudKeyType.Load(); id != 0 {
		return id, nil
	}
	types, err := listAll[struct {
		ID        int64  `json:"id"`
		ModelName string `json:"modelName"`
	}](ctx, c, "list credential types", "/credentialTypes", url.Values{"limit": {pageSize}})
	if err != nil {
		return 0, err
	}
	for _, t := range types {
		if t.ModelName == cloudKeyModel && t.ID > 0 {
			c.cloudKeyType.Store(t.ID)
			return t.ID, nil
		}
	}
	return 0, errors.New("list credential types: the org has no cloudKey credential type")
}
