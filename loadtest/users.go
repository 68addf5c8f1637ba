package loadtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/access/sim"
	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/internal/identity"
)

// users is the population requests are drawn from. Each user's token and
// prebuilt requests are made on first use and then shared by every
// worker: they are read-only from then on.
type users struct {
	tokens  *identity.HS256
	ttl     time.Duration
	unlockN int
	// properties > 1: user i's token names property i mod properties
	// (portfolioProperty); otherwise tokens carry no properties claim.
	properties int
	seed       []sim.User // active users with at least one entry
	slots      []atomic.Pointer[user]
}

// user is one resident's credentials and ready-made requests.
type user struct {
	// md carries "authorization: Bearer <token>" for gRPC.
	md metadata.MD
	// getHeader and postHeader are the REST headers; net/http only reads
	// a request's Header, so one map serves concurrent requests.
	getHeader, postHeader http.Header
	// unlock1 opens the user's first entry; unlockN the first unlockN.
	unlock1, unlockN         *pb.UnlockRequest
	unlock1Body, unlockNBody []byte
	// cross is the unlock-cross request, learnt from the user's
	// ListEntries in the prewarm (entry ids are opaque to clients); nil
	// until then.
	cross atomic.Pointer[crossUnlock]
}

// crossUnlock opens a user's first Openpath entry and first Kisi entry in
// one Unlock, over gRPC (req) or REST (body).
type crossUnlock struct {
	req  *pb.UnlockRequest
	body []byte
}

// newUsers builds the population from seed (its active users with
// entries). Tokens are signed with tokens and valid for ttl; with
// properties > 1 each names its user's property.
func newUsers(seed sim.Seed, tokens *identity.HS256, ttl time.Duration, unlockN, properties int) (*users, error) {
	u := &users{tokens: tokens, ttl: ttl, unlockN: unlockN, properties: properties}
	for _, su := range seed.Users {
		if (su.Status == "" || su.Status == access.StatusActive) && len(su.EntryIDs) > 0 {
			u.seed = append(u.seed, su)
		}
	}
	if len(u.seed) == 0 {
		return nil, errors.New("loadtest: the organisation has no active user with entries")
	}
	u.slots = make([]atomic.Pointer[user], len(u.seed))
	// Mint one now so a bad secret or email fails before any load.
	if _, err := u.get(0); err != nil {
		return nil, err
	}
	return u, nil
}

// len is the number of users.
func (u *users) len() int { return len(u.seed) }

// pick returns a user drawn uniformly.
func (u *users) pick() (*user, error) { return u.get(rand.IntN(len(u.seed))) }

// get returns user i, minting its token on first use. Two workers may
// mint the same user at once; one result wins and both are valid.
func (u *users) get(i int) (*user, error) {
	if p := u.slots[i].Load(); p != nil {
		return p, nil
	}
	p, err := u.build(u.seed[i])
	if err != nil {
		return nil, err
	}
	if !u.slots[i].CompareAndSwap(nil, p) {
		return u.slots[i].Load(), nil
	}
	return p, nil
}

func (u *users) build(su sim.User) (*user, error) {
	var props []string
	if u.properties > 1 {
		props = []string{portfolioProperty(portfolioIndex(su, u.properties))}
	}
	tok, err := u.tokens.SignFor(su.Email, u.ttl, props)
	if err != nil {
		return nil, fmt.Errorf("loadtest: token for %s: %w", su.Email, err)
	}
	bearer := "Bearer " + tok
	ids := make([]string, len(su.EntryIDs))
	for i, id := range su.EntryIDs {
		ids[i] = strconv.Itoa(id)
	}
	p := &user{
		md:         metadata.MD{"authorization": {bearer}},
		getHeader:  http.Header{"Authorization": {bearer}, "Accept": {"application/json"}},
		postHeader: http.Header{"Authorization": {bearer}, "Accept": {"application/json"}, "Content-Type": {"application/json"}},
	}
	if err := p.setUnlocks(ids, u.unlockN); err != nil {
		return nil, err
	}
	return p, nil
}

// setUnlocks builds p's unlock requests: the first of ids, and the first
// unlockN. ids must not be empty.
func (p *user) setUnlocks(ids []string, unlockN int) error {
	n := min(unlockN, len(ids))
	p.unlock1 = &pb.UnlockRequest{EntryIds: ids[:1]}
	p.unlockN = &pb.UnlockRequest{EntryIds: ids[:n]}
	var err error
	if p.unlock1Body, err = json.Marshal(map[string][]string{"entryIds": ids[:1]}); err != nil {
		return err
	}
	p.unlockNBody, err = json.Marshal(map[string][]string{"entryIds": ids[:n]})
	return err
}

// seedFor returns the organisation the users come from: the one the
// simulator generates for cfg, or the demo one.
func seedFor(cfg Config) sim.Seed {
	if cfg.UsersFrom == UsersDemo {
		return sim.DemoSeed()
	}
	return sim.GenerateSeed(cfg.Users, cfg.EntriesPerUser)
}
