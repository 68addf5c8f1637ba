package visitor

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Entries (doors) as the settings map them: the per-door remote-unlock
// flag, and the index of the entries each location of a property maps,
// which finds an entry mapped at two locations (the Rhombus seed's
// misconfiguredDoors).

// remoteUnlock reports whether guest passes may open the entry: nil (an
// omitted flag, and mappings saved before it existed) means on.
func (m EntryMapping) remoteUnlock() bool { return m.RemoteUnlock == nil || *m.RemoteUnlock }

// guestDoor reports whether a guest pass may open entryID now. Only an
// entry mapped with remote unlock off is refused: an entry no longer
// mapped keeps working on the passes issued with it, as before the flag.
// Checked at each tap, so switching the flag off takes effect at once on
// passes already issued.
func (st *Settings) guestDoor(entryID string) bool {
	for _, m := range st.Entries {
		if m.EntryID == entryID {
			return m.remoteUnlock()
		}
	}
	return true
}

// guestDoors returns the entries of a pass that guests may open now.
func (st *Settings) guestDoors(entries []PassEntry) []PassEntry {
	return slices.DeleteFunc(slices.Clone(entries), func(e PassEntry) bool { return !st.guestDoor(e.ID) })
}

// remoteUnlockOff reports the entries mapped with remote unlock off, and
// the visitor types they leave with no entry at all (they get no pass).
// It is a warning, not a refusal: the seed keeps remoteUnlock per door
// in the saved settings, and switching a door off for a while without
// deleting its mapping is a normal use.
func (v *validation) remoteUnlockOff(entries []EntryMapping) {
	open := map[string]bool{}
	var types []string
	for _, m := range entries {
		if m.remoteUnlock() {
			for _, t := range m.VisitorTypes {
				open[typeKey(t)] = true
			}
			continue
		}
		v.misconfiguredWarning(MisconfiguredEntry{EntryID: m.EntryID,
			Reason: "remote unlock is off: no guest pass opens it, and the guest page does not offer it"})
		types = append(types, m.VisitorTypes...)
	}
	seen := map[string]bool{}
	for _, t := range types {
		if k := typeKey(t); !open[k] && !seen[k] {
			seen[k] = true
			v.warn("visitor type %q is mapped only to entries with remote unlock off: it gets no pass", t)
		}
	}
}

// checkOtherLocations reports each entry that another location of
// property maps too: a warning, not a refusal. The seed saves such
// settings and lists the doors in misconfiguredDoors, part of the saved
// integration itself; and one door may rightly serve two Envoy locations
// of a building (a shared lobby). What it changes is that the door opens
// for the guests of both, which the manager should know.
//
// The index is kept with each save; two saves mapping the same entry at
// the same moment may each miss the other (the index is read before the
// write), which the next save of either reports.
func (s *Service) checkOtherLocations(ctx context.Context, v *validation, property, location string, entries []EntryMapping) error {
	if len(entries) == 0 {
		return nil
	}
	if err := s.backfillEntryIndex(ctx); err != nil {
		return err
	}
	ids := make([]string, len(entries))
	for i, m := range entries {
		ids[i] = m.EntryID
	}
	locs, err := s.store.EntryLocations(ctx, property, ids)
	if err != nil {
		return err
	}
	for _, m := range entries {
		others := slices.DeleteFunc(slices.Clone(locs[m.EntryID]), func(l string) bool { return l == location })
		if len(others) == 0 {
			continue
		}
		slices.Sort(others)
		v.misconfiguredWarning(MisconfiguredEntry{
			EntryID: m.EntryID, OtherLocations: others,
			Reason: fmt.Sprintf("also mapped at location %s: it opens for the guests of both", strings.Join(others, ", ")),
		})
	}
	return nil
}

// settingsWrite is the write of out as location's settings, with the
// entries it maps now and those prev mapped that it no longer does.
func settingsWrite(property, location string, prev, out Settings, data []byte) SettingsWrite {
	w := SettingsWrite{Property: property, Location: location, Data: data}
	now := map[string]bool{}
	for _, m := range out.Entries {
		now[m.EntryID] = true
		w.Mapped = append(w.Mapped, m.EntryID)
	}
	for _, m := range prev.Entries {
		if !now[m.EntryID] {
			w.Unmapped = append(w.Unmapped, m.EntryID)
		}
	}
	return w
}

// backfillEntryIndex indexes the entries of every location's saved
// settings, once per process (again after a failure): settings saved
// before the index existed are then compared too. Adding is idempotent,
// so replicas doing it at once agree. A save that unmaps an entry while
// the backfill runs may leave that entry indexed: a false warning until
// the location's next save.
func (s *Service) backfillEntryIndex(ctx context.Context) error {
	s.backfill.Lock()
	defer s.backfill.Unlock()
	if s.backfill.done {
		return nil
	}
	locs, err := s.store.SettingsLocations(ctx)
	if err != nil {
		return fmt.Errorf("visitor: list the locations' settings: %w", err)
	}
	for _, l := range locs {
		st, ok, err := s.loadSettings(ctx, l)
		if err != nil {
			return err
		}
		if !ok || len(st.Entries) == 0 {
			continue
		}
		ids := make([]string, len(st.Entries))
		for i, m := range st.Entries {
			ids[i] = m.EntryID
		}
		if err := s.store.IndexEntries(ctx, st.Property, l, ids); err != nil {
			return fmt.Errorf("visitor: index the entries of %s: %w", l, err)
		}
	}
	s.backfill.done = true
	return nil
}
