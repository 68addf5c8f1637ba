package unlock

// The audit is domain here: what an attempt is, Auditor and AuditReader.
// Storing it is unlock/auditredis's; this package must not import a Redis
// client, server/, gen/ or grpc.

import (
	"context"
	"errors"
	"strings"
	"time"
)

// Audit kinds: what a record is about. Unlock attempts have none in
// Attempt.Kind ("" is KindUnlock, as in every record written before
// kinds); the others record what managers, Envoy and the tile changed.
const (
	KindUnlock           = "unlock"
	KindSettingsChanged  = "settings_changed"
	KindPassIssued       = "pass_issued"
	KindPassEnded        = "pass_ended"
	KindProtectActivated = "protect_activated"
	KindProtectSuspended = "protect_suspended"
	KindTileGranted      = "tile_granted"
	KindTileRevoked      = "tile_revoked"
	KindContactsImported = "contacts_imported"
	// KindPassRefused: a visit got no guest pass (the location switched
	// off, the host's guests disabled, a blocked type, ...), and why.
	KindPassRefused = "pass_refused"
	// The move-out policy (roster/moveout): a user suspended at move-out,
	// one reactivated because the resident is current again, and a run
	// the mass-suspension guard stopped.
	KindMoveOutSuspended   = "moveout_suspended"
	KindMoveOutReactivated = "moveout_reactivated"
	KindMoveOutGuard       = "moveout_guard"
	// KindMoveOutOverride: a person reactivated a user the move-out
	// policy had suspended while the resident is still moved out;
	// cloudkey leaves it (recorded once, when first seen).
	KindMoveOutOverride = "moveout_override"
)

// Kinds lists every audit kind.
var Kinds = []string{KindUnlock, KindSettingsChanged, KindPassIssued, KindPassEnded,
	KindProtectActivated, KindProtectSuspended, KindTileGranted, KindTileRevoked, KindContactsImported, KindPassRefused,
	KindMoveOutSuspended, KindMoveOutReactivated, KindMoveOutGuard, KindMoveOutOverride}

// Attempt is one audited unlock attempt, or with Kind set another audited
// event: Email is then who acted ("admin:<key name>/<key id>", "envoy",
// "tile:<contact>"), EntryID what was acted on (a pass id, a location, a
// contact) and Message what changed.
type Attempt struct {
	// Kind is "" for an unlock attempt, else one of the Kind constants.
	Kind    string
	At      time.Time
	Email   string
	EntryID string
	// System is the connection(s) the entry is on ("harbor-view.kisi",
	// "a+b" for an entry on several); "" when none was asked.
	System string
	// Property is the property the attempt was at; "" for an id no
	// property claimed when the caller named several.
	Property string
	Status   Status
	Message  string
	Latency  time.Duration
}

// Auditor records attempts. Record must not block the reply path.
type Auditor interface {
	Record(Attempt)
}

// Discard drops attempts.
type Discard struct{}

// Record does nothing.
func (Discard) Record(Attempt) {}

// AuditRecord is one attempt (or other audited event) as read back from
// the stream.
type AuditRecord struct {
	ID string // the stream id, also the paging cursor
	// Kind is KindUnlock for unlock attempts (and every record written
	// before kinds), else what the event is.
	Kind    string
	At      time.Time
	User    string // email, or "guest:<pass id>"
	EntryID string
	System  string
	// Property is the attempt's property; "" in records written before
	// properties (the default property's).
	Property string
	Result   string
	Message  string
	Latency  time.Duration
}

// AuditFilter selects records; zero fields match everything.
type AuditFilter struct {
	User, EntryID, Result string
	Since, Until          time.Time
	// Property selects one property's records; Unnamed adds the records
	// that name none (written before properties: the default property's).
	Property string
	Unnamed  bool
	// Kind selects one kind (KindUnlock: unlock attempts).
	Kind string
}

// Match reports whether f selects r.
func (f AuditFilter) Match(r AuditRecord) bool {
	return (f.Property == "" || f.Property == r.Property || (f.Unnamed && r.Property == "")) &&
		(f.Kind == "" || f.Kind == r.Kind) &&
		(f.User == "" || f.User == r.User) &&
		(f.EntryID == "" || f.EntryID == r.EntryID) &&
		(f.Result == "" || strings.EqualFold(f.Result, r.Result))
}

// ErrBadCursor: a page token that List did not hand out.
var ErrBadCursor = errors.New("audit: not a page token from a previous page")

// AuditReader lists audited attempts matching f, newest first, up to
// limit a page, paging by cursor ("" for the newest; the next page's
// cursor comes back, "" after the oldest). A cursor it did not hand out
// is ErrBadCursor. auditredis.AuditLog is the Redis one.
type AuditReader interface {
	List(ctx context.Context, f AuditFilter, limit int, cursor string) (recs []AuditRecord, next string, err error)
}
