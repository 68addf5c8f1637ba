package kisisim

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Seed is the initial state of a simulated Kisi: one or more
// organisations, all served by one server as api.kisi.io serves every
// organisation. Ids (of organisations, places, locks, users and API
// logins) are unique across the whole seed.
type Seed struct {
	Orgs []Org `json:"orgs"`
	// RateLimit is the per-user rate limit the simulator starts with; nil
	// is Kisi's own (DefaultRateLimit requests per second, bursts of
	// DefaultRateBurst). GenerateSeed turns it off for load tests.
	RateLimit *RateLimit `json:"rateLimit,omitempty"`
}

// RateLimit is a per-user rate limit; PerSecond 0 is off.
type RateLimit struct {
	PerSecond float64 `json:"perSecond"`
	Burst     int     `json:"burst"`
}

// Org is one Kisi organisation.
type Org struct {
	ID     int    `json:"id"`
	Name   string `json:"name"`
	Domain string `json:"domain,omitempty"`
	// APIKey is the organisation admin's API key: the secret of the
	// admin's API login (id APIKeyLoginID), sent as
	// "Authorization: KISI-LOGIN <APIKey>".
	APIKey        string `json:"apiKey"`
	APIKeyLoginID int    `json:"apiKeyLoginId"`
	// Admin owns the API key: the org key's calls and unlocks are the
	// admin's. The admin may open every lock of the organisation.
	Admin  Admin   `json:"admin"`
	Places []Place `json:"places"`
	Locks  []Lock  `json:"locks"`
	Users  []User  `json:"users"`
}

// Admin is the user who owns an organisation's API key. It is not listed
// by GET /users.
type Admin struct {
	UserID int    `json:"userId"`
	Email  string `json:"email"`
	Name   string `json:"name"`
}

// Place is a Kisi place (a building or site); every lock is in one.
type Place struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

// Lock is a door. The zero flags are a configured, online lock without
// restrictions once Configured and Online are set; Online is a pointer in
// JSON so that a seed file may leave it out (meaning online).
type Lock struct {
	ID      int    `json:"id"`
	Name    string `json:"name"`
	PlaceID int    `json:"placeId"`
	// LockedDown answers unlocks 409 fad001.
	LockedDown bool `json:"lockedDown,omitempty"`
	// Offline answers unlocks 503 fad107 (online:false in the Lock).
	Offline bool `json:"offline,omitempty"`
	// ReaderRestrictionEnabled needs lock.proximity_proof in the unlock.
	ReaderRestrictionEnabled bool `json:"readerRestrictionEnabled,omitempty"`
	// GeofenceRestrictionEnabled needs context.location in the unlock.
	GeofenceRestrictionEnabled bool `json:"geofenceRestrictionEnabled,omitempty"`
	// Unconfigured reports configured:false; it does not stop unlocks.
	Unconfigured bool `json:"unconfigured,omitempty"`
}

// User is a Kisi user of one organisation. The same email may be a user
// of two organisations, with distinct ids.
type User struct {
	ID    int    `json:"id"`
	Email string `json:"email"`
	Name  string `json:"name"`
	// AccessDisabled and SCIMAccessDisabled are the negations of
	// access_enabled and scim_access_enabled; the user may open doors
	// only when both are enabled.
	AccessDisabled     bool     `json:"accessDisabled,omitempty"`
	SCIMAccessDisabled bool     `json:"scimAccessDisabled,omitempty"`
	Access             []Access `json:"access"`
}

// Access is a user's right to open one lock, as a role assignment in a
// group holding the lock gives it, optionally time-boxed.
type Access struct {
	LockID     int        `json:"lockId"`
	ValidFrom  *time.Time `json:"validFrom,omitempty"`
	ValidUntil *time.Time `json:"validUntil,omitempty"`
}

// Validate reports a seed the simulator cannot serve: a missing name or
// key, a duplicate id or API key, a lock in an unknown place, an access
// to a lock of another organisation, or an email twice in one
// organisation.
func (s Seed) Validate() error {
	ids := map[int]string{}
	claim := func(id int, what string) error {
		if id <= 0 {
			return fmt.Errorf("%s has id %d, want a positive id", what, id)
		}
		if prev, ok := ids[id]; ok {
			return fmt.Errorf("id %d is both %s and %s", id, prev, what)
		}
		ids[id] = what
		return nil
	}
	keys := map[string]bool{}
	if rl := s.RateLimit; rl != nil && (rl.PerSecond < 0 || (rl.PerSecond > 0 && rl.Burst < 1)) {
		return errors.New("rate limit needs perSecond >= 0 and, when on, burst >= 1")
	}
	if len(s.Orgs) == 0 {
		return errors.New("seed has no organisation")
	}
	for _, o := range s.Orgs {
		what := "organisation " + strconv.Itoa(o.ID)
		if err := claim(o.ID, what); err != nil {
			return err
		}
		if o.Name == "" || o.APIKey == "" {
			return fmt.Errorf("%s needs a name and an API key", what)
		}
		if keys[o.APIKey] {
			return fmt.Errorf("%s: API key used twice", what)
		}
		keys[o.APIKey] = true
		if err := claim(o.APIKeyLoginID, what+"'s API login"); err != nil {
			return err
		}
		if err := claim(o.Admin.UserID, what+"'s admin"); err != nil {
			return err
		}
		if !validEmail(o.Admin.Email) {
			return fmt.Errorf("%s: admin email %q is not an email", what, o.Admin.Email)
		}
		places := map[int]bool{}
		for _, p := range o.Places {
			if err := claim(p.ID, "place "+p.Name); err != nil {
				return err
			}
			places[p.ID] = true
		}
		locks := map[int]bool{}
		for _, l := range o.Locks {
			if err := claim(l.ID, "lock "+l.Name); err != nil {
				return err
			}
			if !places[l.PlaceID] {
				return fmt.Errorf("lock %d is in place %d, not one of %s's", l.ID, l.PlaceID, what)
			}
			locks[l.ID] = true
		}
		emails := map[string]bool{lowerASCII(o.Admin.Email): true}
		for _, u := range o.Users {
			if err := claim(u.ID, "user "+u.Email); err != nil {
				return err
			}
			if !validEmail(u.Email) {
				return fmt.Errorf("user %d: %q is not an email", u.ID, u.Email)
			}
			e := lowerASCII(u.Email)
			if emails[e] {
				return fmt.Errorf("%s has email %s twice", what, u.Email)
			}
			emails[e] = true
			for _, a := range u.Access {
				if !locks[a.LockID] {
					return fmt.Errorf("user %s has access to lock %d, not one of %s's", u.Email, a.LockID, what)
				}
				if a.ValidFrom != nil && a.ValidUntil != nil && !a.ValidUntil.After(*a.ValidFrom) {
					return fmt.Errorf("user %s: access to lock %d ends before it starts", u.Email, a.LockID)
				}
			}
		}
	}
	return nil
}

func validEmail(e string) bool {
	at := strings.IndexByte(e, '@')
	return at > 0 && at < len(e)-1 && !strings.ContainsAny(e, " \t\r\n")
}

// The demo organisations (DemoSeed), per PRODUCT.md "Access systems and
// properties". Tests and the embedded default server rely on these ids
// and keys.
const (
	DemoHarborOrgID      = 7001
	DemoHarborAPIKey     = "demo-kisi-api-key"
	DemoHarborKeyLoginID = 7002
	DemoHarborAdminID    = 7003
	DemoHarborPlaceID    = 7010
	DemoPoolID           = 7011
	DemoPackageRoomID    = 7012
	DemoHarborFrankID    = 7021
	DemoGinaID           = 7022

	DemoFoundryOrgID      = 8001
	DemoFoundryAPIKey     = "demo-kisi-foundry-key"
	DemoFoundryKeyLoginID = 8002
	DemoFoundryAdminID    = 8003
	DemoFoundryPlaceID    = 8010
	DemoFrontDoorID       = 8011
	DemoBikeRoomID        = 8012
	DemoFoundryFrankID    = 8021
	DemoHankID            = 8022

	DemoFrankEmail = "frank@example.com"
	DemoGinaEmail  = "gina@example.com"
	DemoHankEmail  = "hank@example.com"
)

// DemoSeed returns the two demo organisations: "Harbor View Amenities"
// (key DemoHarborAPIKey; locks Pool and Package Room; Frank has both,
// Gina has Pool) and "Foundry Lofts" (key DemoFoundryAPIKey; locks Front
// Door and Bike Room; Frank has Front Door, Hank has both). Every user is
// active and every lock online, unrestricted and not locked down.
func DemoSeed() Seed {
	return Seed{Orgs: []Org{
		{
			ID: DemoHarborOrgID, Name: "Harbor View Amenities", Domain: "harbor-view-amenities",
			APIKey: DemoHarborAPIKey, APIKeyLoginID: DemoHarborKeyLoginID,
			Admin:  Admin{UserID: DemoHarborAdminID, Email: "admin@harbor-view.example", Name: "Harbor View Admin"},
			Places: []Place{{ID: DemoHarborPlaceID, Name: "Harbor View"}},
			Locks: []Lock{
				{ID: DemoPoolID, Name: "Pool", PlaceID: DemoHarborPlaceID},
				{ID: DemoPackageRoomID, Name: "Package Room", PlaceID: DemoHarborPlaceID},
			},
			Users: []User{
				{ID: DemoHarborFrankID, Email: DemoFrankEmail, Name: "Frank", Access: []Access{{LockID: DemoPoolID}, {LockID: DemoPackageRoomID}}},
				{ID: DemoGinaID, Email: DemoGinaEmail, Name: "Gina", Access: []Access{{LockID: DemoPoolID}}},
			},
		},
		{
			ID: DemoFoundryOrgID, Name: "Foundry Lofts", Domain: "foundry-lofts",
			APIKey: DemoFoundryAPIKey, APIKeyLoginID: DemoFoundryKeyLoginID,
			Admin:  Admin{UserID: DemoFoundryAdminID, Email: "admin@foundry-lofts.example", Name: "Foundry Lofts Admin"},
			Places: []Place{{ID: DemoFoundryPlaceID, Name: "Foundry Lofts"}},
			Locks: []Lock{
				{ID: DemoFrontDoorID, Name: "Front Door", PlaceID: DemoFoundryPlaceID},
				{ID: DemoBikeRoomID, Name: "Bike Room", PlaceID: DemoFoundryPlaceID},
			},
			Users: []User{
				{ID: DemoFoundryFrankID, Email: DemoFrankEmail, Name: "Frank", Access: []Access{{LockID: DemoFrontDoorID}}},
				{ID: DemoHankID, Email: DemoHankEmail, Name: "Hank", Access: []Access{{LockID: DemoFrontDoorID}, {LockID: DemoBikeRoomID}}},
			},
		},
	}}
}

// Ids and key of GenerateSeed's organisation. User i has id
// LoadUserIDBase+i; the locks have ids LoadLockIDBase+1, +2, ...
const (
	LoadOrgID       = 1
	LoadAPIKey      = "load-kisi-api-key"
	LoadKeyLoginID  = 2
	LoadAdminID     = 3
	LoadPlaceID     = 4
	LoadLockIDBase  = 100_000
	LoadUserIDBase  = 1_000_000
	loadLockPoolMin = 16
)

// LoadUserEmail is the email of GenerateSeed's user i, the same scheme as
// access/sim's: user{i}@load.example.com.
func LoadUserEmail(i int) string {
	return "user" + strconv.Itoa(i) + "@load.example.com"
}

// GenerateSeed builds one large organisation for load tests,
// deterministically: API key LoadAPIKey, users active users (emails from
// LoadUserEmail), each with access to locksPerUser locks of a pool of
// max(16, 4*locksPerUser); consecutive users share locks. The rate limit
// is off.
func GenerateSeed(users, locksPerUser int) Seed {
	users, locksPerUser = max(users, 0), max(locksPerUser, 0)
	org := Org{
		ID: LoadOrgID, Name: "Load Test Residences", Domain: "load-test",
		APIKey: LoadAPIKey, APIKeyLoginID: LoadKeyLoginID,
		Admin:  Admin{UserID: LoadAdminID, Email: "admin@load.example.com", Name: "Load Admin"},
		Places: []Place{{ID: LoadPlaceID, Name: "Load Site"}},
	}
	pool := max(loadLockPoolMin, 4*locksPerUser)
	org.Locks = make([]Lock, pool)
	for e := range pool {
		org.Locks[e] = Lock{ID: LoadLockIDBase + e + 1, Name: "Door " + strconv.Itoa(e+1), PlaceID: LoadPlaceID}
	}
	org.Users = make([]User, users)
	for i := range users {
		acc := make([]Access, locksPerUser)
		for j := range acc {
			acc[j] = Access{LockID: LoadLockIDBase + (i+j)%pool + 1}
		}
		org.Users[i] = User{ID: LoadUserIDBase + i, Email: LoadUserEmail(i), Name: "User " + strconv.Itoa(i), Access: acc}
	}
	return Seed{Orgs: []Org{org}, RateLimit: &RateLimit{}}
}
