package sim

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/cloudkey/cloudkey/access"
)

// Seed is the initial state of one simulated Openpath organisation. It is
// the JSON format of seed files (see demo.json for an example).
type Seed struct {
	Org             Org              `json:"org"`
	ServiceAccount  ServiceAccount   `json:"serviceAccount"`
	CredentialTypes []CredentialType `json:"credentialTypes"`
	Entries         []Entry          `json:"entries"`
	Users           []User           `json:"users"`
}

// Org is the simulated organisation. Requests for any other org id get 404.
type Org struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

// ServiceAccount is the only identity that may log in with POST /auth/login.
type ServiceAccount struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// CredentialType is a kind of credential (mobile, card, cloud key...).
// Clients recognise the cloud key by ModelName "cloudKey", not by id.
type CredentialType struct {
	ID          int    `json:"id"`
	Name        string `json:"name"`
	ModelName   string `json:"modelName"`
	Description string `json:"description,omitempty"`
}

// Entry is a door. Zone and Site are names; the simulator numbers zones and
// sites itself, in order of first appearance.
type Entry struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
	Zone string `json:"zone"`
	Site string `json:"site"`
}

// User is an Openpath user. Two users may share an email (Openpath allows it
// across namespaces), which is how ambiguity is simulated.
type User struct {
	ID        int    `json:"id"`
	Email     string `json:"email"`
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
	// Status is A (active), S (suspended) or I (inactive); empty means A.
	Status      access.Status `json:"status,omitempty"`
	EntryIDs    []int         `json:"entryIds"`
	Credentials []Credential  `json:"credentials,omitempty"`
}

// Credential is one of a user's credentials. Credential ids are unique
// across the organisation.
type Credential struct {
	ID               int    `json:"id"`
	CredentialTypeID int    `json:"credentialTypeId"`
	Name             string `json:"name,omitempty"`
}

// The demo organisation (demo.json, returned by DemoSeed). Tests and the
// embedded default server rely on these ids.
const (
	DemoOrgID           = 1
	DemoServiceEmail    = "bot@cloudkey.local"
	DemoServicePassword = "demo-password"

	// Credential types. The cloud key is deliberately not 1 (that is
	// Mobile, as on real Openpath orgs), so clients must look it up.
	DemoMobileTypeID   = 1
	DemoCardTypeID     = 2
	DemoCloudKeyTypeID = 7

	// Entries. Server Room is assigned to nobody.
	DemoLobbyID      = 101
	DemoGarageID     = 102
	DemoGymID        = 103
	DemoRoofDeckID   = 104
	DemoServerRoomID = 105

	// Users.
	DemoAliceID = 201 // alice@example.com: active; Lobby, Garage, Gym; a mobile credential, no cloud key
	DemoBobID   = 202 // bob@example.com: active; no entries; a card
	DemoCarolID = 203 // carol@example.com: suspended; Lobby; a cloud key
	DemoErinID  = 204 // erin@example.com: active; Lobby, Roof Deck; a cloud key
	// DemoFrankID is frank@example.com: active; Lobby; no credential. He
	// also has Kisi doors at the property (PRODUCT.md's demo).
	DemoFrankID = 205
	// DemoServiceUserID is the service account's own user (bot@cloudkey.local,
	// "Envoy Bot"): active; Lobby, Garage, Gym, Roof Deck; no cloud key yet.
	// Guest unlock tokens are issued on its cloud key, as Openpath's Envoy
	// integration issues them on the "Envoy Bot" user's.
	DemoServiceUserID = 200

	// Credentials.
	DemoAliceMobileID   = 301
	DemoBobCardID       = 302
	DemoCarolCloudKeyID = 303
	DemoErinCloudKeyID  = 304
)

//go:embed demo.json
var demoJSON []byte

// DemoSeed returns a fresh copy of the embedded demo organisation; the ids
// are the Demo* constants.
func DemoSeed() Seed {
	seed, err := ParseSeed(demoJSON)
	if err != nil {
		panic("sim: embedded demo.json is invalid: " + err.Error())
	}
	return seed
}

// LoadSeed reads and validates a seed file.
func LoadSeed(path string) (Seed, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Seed{}, fmt.Errorf("sim: load seed: %w", err)
	}
	seed, err := ParseSeed(data)
	if err != nil {
		return Seed{}, fmt.Errorf("sim: load seed %s: %w", path, err)
	}
	return seed, nil
}

// ParseSeed decodes and validates a seed. Unknown fields are rejected so a
// typo in a seed file does not silently drop data.
func ParseSeed(data []byte) (Seed, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var seed Seed
	if err := dec.Decode(&seed); err != nil {
		return Seed{}, fmt.Errorf("decode seed: %w", err)
	}
	if err := seed.Validate(); err != nil {
		return Seed{}, err
	}
	return seed, nil
}

// Validate reports the first inconsistency in the seed: missing or
// duplicate ids, references to unknown entries or credential types, bad
// statuses.
func (s Seed) Validate() error {
	if s.Org.ID <= 0 {
		return errors.New("seed: org.id must be a positive integer")
	}
	if s.ServiceAccount.Email == "" || s.ServiceAccount.Password == "" {
		return errors.New("seed: serviceAccount.email and serviceAccount.password are required")
	}
	types := make(map[int]bool, len(s.CredentialTypes))
	for i, t := range s.CredentialTypes {
		if t.ID <= 0 || types[t.ID] {
			return fmt.Errorf("seed: credentialTypes[%d]: id %d is not positive or not unique", i, t.ID)
		}
		if t.ModelName == "" {
			return fmt.Errorf("seed: credentialTypes[%d]: modelName is required", i)
		}
		types[t.ID] = true
	}
	entries := make(map[int]bool, len(s.Entries))
	for i, e := range s.Entries {
		if e.ID <= 0 || entries[e.ID] {
			return fmt.Errorf("seed: entries[%d]: id %d is not positive or not unique", i, e.ID)
		}
		if e.Name == "" {
			return fmt.Errorf("seed: entries[%d]: name is required", i)
		}
		entries[e.ID] = true
	}
	users := make(map[int]bool, len(s.Users))
	creds := make(map[int]bool)
	for i, u := range s.Users {
		if u.ID <= 0 || users[u.ID] {
			return fmt.Errorf("seed: users[%d]: id %d is not positive or not unique", i, u.ID)
		}
		users[u.ID] = true
		if u.Email == "" {
			return fmt.Errorf("seed: users[%d]: email is required", i)
		}
		switch u.Status {
		case "", access.StatusActive, access.StatusSuspended, access.StatusInactive:
		default:
			return fmt.Errorf("seed: users[%d]: status %q is not A, S or I", i, u.Status)
		}
		for _, id := range u.EntryIDs {
			if !entries[id] {
				return fmt.Errorf("seed: users[%d]: unknown entry id %d", i, id)
			}
		}
		for _, c := range u.Credentials {
			if c.ID <= 0 || creds[c.ID] {
				return fmt.Errorf("seed: users[%d]: credential id %d is not positive or not unique", i, c.ID)
			}
			creds[c.ID] = true
			if !types[c.CredentialTypeID] {
				return fmt.Errorf("seed: users[%d]: credential %d has unknown credentialTypeId %d", i, c.ID, c.CredentialTypeID)
			}
		}
	}
	return nil
}

// Ids used by GenerateSeed. User i has id LoadUserIDBase+i; the pool's
// entries have ids LoadEntryIDBase+1, LoadEntryIDBase+2, ...
const (
	LoadUserIDBase  = 1_000_000
	LoadEntryIDBase = 10_000
)

// LoadUserEmail is the email of user i (0-based) of a GenerateSeed org:
// user0@load.example.com, user1@load.example.com, ...
func LoadUserEmail(i int) string {
	return "user" + strconv.Itoa(i) + "@load.example.com"
}

// GenerateSeed builds a large organisation for load tests, deterministically:
// users active users (emails from LoadUserEmail, no credentials yet), each
// assigned entriesPerUser distinct entries taken round-robin from a pool of
// max(16, 4*entriesPerUser) entries. The org id, service account and
// credential types are the demo ones. New takes about 2 s and 500 MB per
// million users, most of it indexing emails for the contains filter.
func GenerateSeed(users, entriesPerUser int) Seed {
	users, entriesPerUser = max(users, 0), max(entriesPerUser, 0)
	demo := DemoSeed()
	seed := Seed{
		Org:             Org{ID: DemoOrgID, Name: "Load Test Residences"},
		ServiceAccount:  demo.ServiceAccount,
		CredentialTypes: demo.CredentialTypes,
	}
	pool := max(16, 4*entriesPerUser)
	seed.Entries = make([]Entry, pool)
	for e := range pool {
		seed.Entries[e] = Entry{
			ID:   LoadEntryIDBase + e + 1,
			Name: "Door " + strconv.Itoa(e+1),
			Zone: "Zone " + strconv.Itoa(e/16+1),
			Site: "Load Site",
		}
	}
	seed.Users = make([]User, users)
	for i := range users {
		ids := make([]int, entriesPerUser)
		for j := range ids {
			// (i+j) mod pool is distinct for j < entriesPerUser <= pool, and
			// consecutive users overlap, as neighbours in a building do.
			ids[j] = LoadEntryIDBase + (i+j)%pool + 1
		}
		seed.Users[i] = User{
			ID:        LoadUserIDBase + i,
			Email:     LoadUserEmail(i),
			FirstName: "User",
			LastName:  strconv.Itoa(i),
			Status:    access.StatusActive,
			EntryIDs:  ids,
		}
	}
	return seed
}
