package envoysim

import (
	"errors"
	"net/http"
)

// The control paths stand for the front desk, for a demo run by hand
// (tests call SignIn and SignOut): they are not Envoy's API, need no
// token, and live under /_sim/ so that no client mistakes them for it.
//
//	POST /_sim/invites/{id}/sign-in  signs the invitee in (entry_sign_in is
//	                                 delivered first); answers {"entryId"}
//	POST /_sim/entries/{id}/sign-out signs the entry out (entry_sign_out)

func (s *Sim) controlRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /_sim/invites/{id}/sign-in", func(w http.ResponseWriter, r *http.Request) {
		entry, err := s.SignIn(r.PathValue("id"))
		if err != nil {
			controlError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, "application/json", map[string]string{"entryId": entry})
	})
	mux.HandleFunc("POST /_sim/entries/{id}/sign-out", func(w http.ResponseWriter, r *http.Request) {
		if err := s.SignOut(r.PathValue("id")); err != nil {
			controlError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// controlError answers 404 for an unknown invite or entry and 502 when
// the webhook receiver did not take the event (it was recorded anyway).
func controlError(w http.ResponseWriter, err error) {
	status := http.StatusNotFound
	if errors.Is(err, errDelivery) {
		status = http.StatusBadGateway
	}
	writeError(w, status, err.Error())
}
