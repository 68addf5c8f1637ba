package server

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"time"

	"github.com/cloudkey/cloudkey/visitor"
	"github.com/cloudkey/cloudkey/visitor/envoy"
)

//go:embed web
var webFS embed.FS

var guestPage = template.Must(template.ParseFS(webFS, "web/guest.html"))

// guestPageData is what web/guest.html renders.
type guestPageData struct {
	visitor.View
	Window string
	Active bool
}

// servePass renders GET /g/{token}. An unknown token renders exactly as an
// ended pass does, with the same status, so the page is no token oracle.
func (s *Server) servePass(w http.ResponseWriter, r *http.Request) {
	w.Header()["Content-Security-Policy"] = guestCSP // the rest (no-store, no-referrer, DENY) from secureHeaders
	if s.cfg.Visitors == nil {
		http.Error(w, "visitor passes are not configured", http.StatusNotFound)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	v, err := s.cfg.Visitors.PassView(ctx, r.PathValue("token"))
	if err != nil {
		code, msg, ok := httpAnswer(err, "Your pass cannot be shown right now; try again in a moment.")
		if !ok {
			s.cfg.Logger.ErrorContext(ctx, "guest page: cannot read pass", "err", err)
		}
		http.Error(w, msg, code)
		return
	}
	data := guestPageData{View: v, Active: v.State == visitor.StateActive}
	if !v.Start.IsZero() {
		data.Window = window(v.Start, v.End, v.TimeZone)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := guestPage.Execute(w, data); err != nil {
		s.cfg.Logger.ErrorContext(ctx, "guest page: render", "err", err)
	}
}

// window formats a pass window in the building's time zone.
func window(start, end time.Time, tz string) string {
	loc, err := time.LoadLocation(tz)
	if err != nil || tz == "" {
		loc = time.UTC
	}
	start, end = start.In(loc), end.In(loc)
	const day, clock = "Mon Jan 2", "3:04 PM"
	if start.YearDay() == end.YearDay() && start.Year() == end.Year() {
		return fmt.Sprintf("%s, %s – %s %s", start.Format(day), start.Format(clock), end.Format(clock), end.Format("MST"))
	}
	return fmt.Sprintf("%s %s – %s %s %s", start.Format(day), start.Format(clock), end.Format(day), end.Format(clock), end.Format("MST"))
}

// serveTile serves the tenant tile; the page itself is static, the bearer
// token stays in the URL fragment and API calls. It may be framed by the
// configured ancestors (the tenant app's web version).
func (s *Server) serveTile(w http.ResponseWriter, r *http.Request) {
	b, err := webFS.ReadFile("web/tile.html")
	if err != nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h["Content-Security-Policy"] = s.tile.csp
	if !s.tile.deny {
		delete(h, "X-Frame-Options")
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b)
}

func serveStatic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	types := map[string]string{
		"guest.js": "text/javascript; charset=utf-8", "tile.js": "text/javascript; charset=utf-8",
		"guest.css": "text/css; charset=utf-8",
	}
	ct, ok := types[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	b, err := webFS.ReadFile("web/" + name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(b)
}

// serveEnvoyWebhook handles POST /webhooks/envoy: the signature is checked
// over the raw body before anything is parsed or recorded.
func (s *Server) serveEnvoyWebhook(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Visitors == nil || len(s.cfg.EnvoySecret) == 0 {
		writeJSONError(w, http.StatusNotFound, "the Envoy integration is not configured")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, envoy.MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeJSONError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", envoy.MaxBodyBytes))
		return
	case err != nil:
		writeJSONError(w, http.StatusBadRequest, "cannot read the body: "+err.Error())
		return
	}
	if !envoy.VerifySignature(body, r.Header.Get(envoy.SignatureHeader), s.cfg.EnvoySecret) {
		writeJSONError(w, http.StatusUnauthorized, envoy.SignatureHeader+": missing or not the HMAC-SHA256 of the body")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	out, err := s.cfg.Visitors.HandleEvent(ctx, body)
	if err != nil {
		// A malformed event is 400; one still being handled 409 (Envoy
		// redelivers); anything else 503.
		code, msg, ok := httpAnswer(err, "cannot handle the event now; redeliver later")
		if !ok {
			s.cfg.Logger.ErrorContext(ctx, "envoy webhook failed", "err", err)
		}
		writeJSONError(w, code, msg)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"action": out.Action, "reason": out.Reason, "duplicate": out.Duplicate,
		"event": out.Event, "passId": out.PassID,
	})
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]any{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
