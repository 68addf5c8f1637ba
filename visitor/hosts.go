package visitor

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cloudkey/cloudkey/internal/identity"
)

// HostSettings are one host's guest permission (the Rhombus seed's
// EnvoyUserSettings).
type HostSettings struct {
	// GuestsEnabled false: the host's guests get no pass. nil (omitted)
	// means allowed, as the seed's nullable booleans do.
	GuestsEnabled *bool `json:",omitempty"`
}

// MaxHosts bounds the per-host settings.
const MaxHosts = 10_000

// guestsAllowed reports whether host (an email, any case) may have
// guests get passes: a host not listed, or listed without GuestsEnabled,
// is allowed, as is a visit without a host.
func (st *Settings) guestsAllowed(host string) bool {
	if host == "" || len(st.Hosts) == 0 {
		return true
	}
	h, ok := st.Hosts[identity.FoldEmail(host)]
	return !ok || h.GuestsEnabled == nil || *h.GuestsEnabled
}

// hosts canonicalises the per-host settings: keys folded as emails are
// everywhere; each must be an email address, and two spellings of one
// host must agree.
func (v *validation) hosts(in map[string]HostSettings) map[string]HostSettings {
	if len(in) == 0 {
		return nil
	}
	if len(in) > MaxHosts {
		v.fail("hosts", "settings.hosts", "%d hosts, more than %d", len(in), MaxHosts)
		return nil
	}
	out := make(map[string]HostSettings, len(in))
	for _, raw := range slices.Sorted(maps.Keys(in)) { // sorted: the same answer every time
		h := in[raw]
		e := identity.FoldEmail(raw)
		field := fmt.Sprintf("settings.hosts[%q]", strings.TrimSpace(raw))
		if !isEmail(e) {
			v.fail(strings.TrimSpace(raw), field, "%q is not an email address", strings.TrimSpace(raw))
			continue
		}
		if prev, dup := out[e]; dup {
			if allowed(prev.GuestsEnabled) != allowed(h.GuestsEnabled) {
				v.fail(strings.TrimSpace(raw), field, "the host %s is listed twice, with guests enabled and disabled", e)
			} else {
				v.warn("the host %s is listed twice", e)
			}
			continue
		}
		out[e] = h
	}
	return out
}

func allowed(b *bool) bool { return b == nil || *b }

// hostEmail is the visit's host for the per-host permission: the one
// Envoy names, else the tenant contact who registered it in the tile.
func (v *visit) hostEmail() string {
	if v.EnvoyHostEmail != "" {
		return v.EnvoyHostEmail
	}
	return v.Host
}
