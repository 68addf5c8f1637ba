package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
)

// The systems an Entry's system field names.
const (
	systemOpenpath = "openpath"
	systemKisi     = "kisi"
)

// errNoCross labels an unlock-cross call for a user whose entries the
// prewarm did not learn (not reached: Validate requires the prewarm,
// which fails on such a user).
const errNoCross = "unlock-cross: entries not learnt"

// crossAttempts bounds learnCross's ListEntries for one user. A listing
// over several systems leaves out the entries of a system that could not
// answer in time (a loaded machine, a first login being created), and
// such a failure is not cached: asking again is how a resident's app
// would get the whole list.
const crossAttempts = 4

// learnCross lists u's entries, over gRPC when the runner has gRPC
// connections, else over REST, and records u's unlock-cross request: its
// first Openpath entry and its first Kisi entry, by the ids ListEntries
// gives (opaque to clients: never built from a connection-id convention).
// It is the prewarm's ListEntries for unlock-cross runs; each attempt has
// the run's Timeout, and a partial listing is asked again, after a pause.
func (r *runner) learnCross(ctx context.Context, worker int, u *user) error {
	var err error
	pause := 100 * time.Millisecond
	for attempt := range crossAttempts {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return err
			case <-time.After(pause):
			}
			pause *= 2
		}
		cctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
		err = r.learnCrossOnce(cctx, worker, u)
		cancel()
		if err == nil {
			return nil
		}
	}
	return fmt.Errorf("%w (%d attempts)", err, crossAttempts)
}

func (r *runner) learnCrossOnce(ctx context.Context, worker int, u *user) error {
	var entries []*pb.Entry
	if r.conns != nil {
		resp := new(pb.ListEntriesResponse)
		cctx := metadata.NewOutgoingContext(ctx, u.md)
		if err := r.conns[worker%len(r.conns)].Invoke(cctx, pb.ResidentService_ListEntries_FullMethodName, listReq, resp); err != nil {
			return fmt.Errorf("%s", codeName(status.Code(err)))
		}
		entries = resp.GetEntries()
	} else {
		var err error
		if entries, err = r.listREST(ctx, u); err != nil {
			return err
		}
	}
	var op, kisi string
	for _, e := range entries {
		switch {
		case op == "" && e.GetSystem() == systemOpenpath:
			op = e.GetId()
		case kisi == "" && e.GetSystem() == systemKisi:
			kisi = e.GetId()
		}
	}
	if op == "" || kisi == "" {
		return fmt.Errorf("unlock-cross needs an Openpath and a Kisi entry; ListEntries gave %d entries (Openpath %q, Kisi %q)", len(entries), op, kisi)
	}
	ids := []string{op, kisi}
	body, err := json.Marshal(map[string][]string{"entryIds": ids})
	if err != nil {
		return err
	}
	u.cross.Store(&crossUnlock{req: &pb.UnlockRequest{EntryIds: ids}, body: body})
	return nil
}

// entriesJSON is the gateway's ListEntriesResponse, as far as learnCross
// reads it.
type entriesJSON struct {
	Entries []struct {
		ID     string `json:"id"`
		System string `json:"system"`
	} `json:"entries"`
}

func (r *runner) listREST(ctx context.Context, u *user) ([]*pb.Entry, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.tgt.httpAddr+"/v1/me/entries", nil)
	if err != nil {
		return nil, err
	}
	req.Header = u.getHeader
	resp, err := r.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s", transportErr(ctx, err))
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, resp.Body); err != nil {
		return nil, fmt.Errorf("%s", transportErr(ctx, err))
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s", restErrCode(resp.StatusCode, buf.Bytes()))
	}
	var ej entriesJSON
	if err := json.Unmarshal(buf.Bytes(), &ej); err != nil {
		return nil, fmt.Errorf("%s: %v", errBadBody, err)
	}
	out := make([]*pb.Entry, len(ej.Entries))
	for i, e := range ej.Entries {
		out[i] = &pb.Entry{Id: e.ID, System: e.System}
	}
	return out, nil
}
