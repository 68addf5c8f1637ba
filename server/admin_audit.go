package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/unlock"
)

// The audit of admin changes: each is a record of its kind in the audit
// stream unlocks go to, under the property it changed, naming the admin
// key (adminActor) and what changed. ListAuditEvents reads them all.

// record audits an admin change of kind to subject at property.
func (s *adminServer) record(ctx context.Context, property, kind, subject, message string) {
	if s.auditor == nil {
		return
	}
	s.auditor.Record(unlock.Attempt{
		Kind: kind, At: time.Now().UTC(), Email: adminActor(ctx), EntryID: subject,
		Property: property, Status: unlock.OK, Message: message,
	})
}

// Bounds on what a settings change's record says: a value, and the whole.
const (
	maxAuditValue   = 300
	maxAuditMessage = 4000
)

// settingsChanges says which settings changed from before (nil: none
// saved yet) to after, field by field in the API's JSON names:
// `accessDuration: "7200s" → "3600s"`. The update time is left out.
func settingsChanges(before, after *pb.VisitorSettings) string {
	fields := func(m *pb.VisitorSettings) map[string]json.RawMessage {
		out := map[string]json.RawMessage{}
		if m == nil {
			return out
		}
		b, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(m)
		if err == nil {
			_ = json.Unmarshal(b, &out)
		}
		delete(out, "updatedAt")
		return out
	}
	was, now := fields(before), fields(after)
	// Both sides' names: a field with presence (enabled, an optional
	// flag) is absent when unset, so a change to unset is only in was.
	names := make([]string, 0, len(now))
	for k := range now {
		names = append(names, k)
	}
	for k := range was {
		if _, ok := now[k]; !ok {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	value := func(r json.RawMessage) string {
		if r == nil {
			return "(none)"
		}
		v := string(compact(r))
		if len(v) > maxAuditValue {
			v = v[:maxAuditValue] + "…"
		}
		return v
	}
	var parts []string
	for _, k := range names {
		if before != nil && string(compact(was[k])) == string(compact(now[k])) {
			continue
		}
		if before == nil {
			parts = append(parts, fmt.Sprintf("%s: %s", k, value(now[k])))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s: %s → %s", k, value(was[k]), value(now[k])))
	}
	msg := "no change"
	switch {
	case before == nil:
		msg = "created: " + strings.Join(parts, "; ")
	case len(parts) > 0:
		msg = strings.Join(parts, "; ")
	}
	if len(msg) > maxAuditMessage {
		msg = msg[:maxAuditMessage] + "…"
	}
	return msg
}

func compact(r json.RawMessage) []byte {
	var c bytes.Buffer
	if json.Compact(&c, r) != nil {
		return r
	}
	return c.Bytes()
}
