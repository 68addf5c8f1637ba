package auditredis

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/cloudkey/cloudkey/unlock"
)

// The spool is a local file of audit records that Redis could not take
// when the auditor closed (SIGTERM during a Redis outage). The next
// auditor started with the same spool writes them to the stream first. It
// keeps the records whole, emails included, which the log cannot: the log
// handler redacts emails, and the audit is who opened which door.

// spoolRecord is one spooled attempt, in the stream's field names.
type spoolRecord struct {
	At        int64  `json:"at"` // Unix milliseconds
	Email     string `json:"email"`
	Entry     string `json:"entry"`
	System    string `json:"system,omitempty"`
	Property  string `json:"property,omitempty"`
	Result    string `json:"result"`
	Message   string `json:"message"`
	LatencyUS int64  `json:"latency_us"`
	Kind      string `json:"kind,omitempty"`
}

func toSpool(at unlock.Attempt) spoolRecord {
	return spoolRecord{At: at.At.UnixMilli(), Email: at.Email, Entry: at.EntryID, System: at.System, Property: at.Property, Result: at.Status.String(),
		Message: at.Message, LatencyUS: at.Latency.Microseconds(), Kind: at.Kind}
}

func (r spoolRecord) attempt() unlock.Attempt {
	st := unlock.Error
	for s := unlock.OK; s <= unlock.Error; s++ {
		if s.String() == r.Result {
			st = s
		}
	}
	return unlock.Attempt{At: time.UnixMilli(r.At), Email: r.Email, EntryID: r.Entry, System: r.System, Property: r.Property, Status: st,
		Message: r.Message, Latency: time.Duration(r.LatencyUS) * time.Microsecond, Kind: r.Kind}
}

// appendSpool appends batch to the spool file, one JSON line per record,
// and syncs it before returning.
func appendSpool(path string, batch []unlock.Attempt) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("audit spool: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("audit spool: %w", err)
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, at := range batch {
		if err = enc.Encode(toSpool(at)); err != nil {
			break
		}
	}
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("audit spool %s: %w", path, err)
	}
	return nil
}

// replaySpool writes the spooled records to the stream before anything
// else. The spool is first renamed, so records spooled meanwhile (another
// auditor closing) start a new file; a replay file left by a crash is
// replayed too. A replay file is removed once its records were written,
// or spooled again because Close came first.
func (a *StreamAuditor) replaySpool() {
	replay := a.spool + ".replay"
	if err := os.Rename(a.spool, replay); err != nil && !errors.Is(err, fs.ErrNotExist) {
		a.log.Error("audit spool: cannot take it for replay", "path", a.spool, "err", err)
		return
	}
	f, err := os.Open(replay)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		a.log.Error("audit spool: cannot read it", "path", replay, "err", err)
		return
	}
	var batch []unlock.Attempt
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	bad := 0
	for sc.Scan() {
		var r spoolRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			bad++ // a line cut short by a crash mid-write
			continue
		}
		batch = append(batch, r.attempt())
	}
	err = sc.Err()
	f.Close()
	if err != nil {
		a.log.Error("audit spool: cannot read it; kept for the next start", "path", replay, "err", err)
		return
	}
	for len(batch) > 0 {
		n := min(len(batch), auditBatch)
		a.write(batch[:n])
		batch = batch[n:]
	}
	if err := os.Remove(replay); err != nil {
		a.log.Error("audit spool: replayed but not removed; its records may be written twice", "path", replay, "err", err)
		return
	}
	if bad > 0 {
		a.log.Error("audit spool: unreadable lines skipped", "path", replay, "lines", bad)
	}
}
