package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/authd/authd/resource"
)

// Config is the service's configuration.
type Config struct {
	Issuer       string
	Audience     string // default urn:authd:notes
	ClientID     string
	ClientSecret string
	// AppClientID is the client id of the app whose users' logouts this
	// service honours: that client registers this service's
	// /backchannel-logout as its backchannel_logout_uri. Empty: none.
	AppClientID string
}

// Server is the notes API. It is an http.Handler.
type Server struct {
	verifier *resource.Verifier
	credits  *resource.Credits
	notes    *store
	mux      *http.ServeMux

	mu        sync.Mutex
	loggedOut map[string]time.Time // user → when authd logged them out
}

// New builds the service from cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Audience == "" {
		cfg.Audience = "urn:authd:notes"
	}
	v, err := resource.NewVerifier(resource.Config{Issuer: cfg.Issuer, Audience: cfg.Audience, Realm: "notes"})
	if err != nil {
		return nil, err
	}
	c, err := resource.NewCredits(resource.CreditsConfig{Issuer: cfg.Issuer, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret})
	if err != nil {
		return nil, err
	}
	s := &Server{verifier: v, credits: c, notes: newStore(), mux: http.NewServeMux(), loggedOut: map[string]time.Time{}}
	// The whole protection of the API is these two lines.
	s.mux.Handle("GET /notes", v.Require(s.current(v.RequireScope("notes:read")(http.HandlerFunc(s.list)))))
	s.mux.Handle("POST /notes", v.Require(s.current(v.RequireRole("editor")(http.HandlerFunc(s.create)))))
	if cfg.AppClientID != "" {
		// Back-channel logout: authd tells the service when a user of the
		// app logged out; tokens issued before that stop working here at
		// once instead of at their expiry.
		lv, err := resource.NewLogoutVerifier(resource.Config{Issuer: cfg.Issuer, Audience: cfg.AppClientID})
		if err != nil {
			return nil, err
		}
		s.mux.Handle("POST /backchannel-logout", lv.LogoutHandler(s.logout))
	}
	return s, nil
}

// logout records a verified logout token. Every logout token authd sends
// names the user; one naming only a session (sid) has nothing to end here,
// since access tokens do not carry sid.
func (s *Server) logout(_ context.Context, c *resource.LogoutClaims) error {
	if c.Subject == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.IssuedAt.After(s.loggedOut[c.Subject]) {
		s.loggedOut[c.Subject] = c.IssuedAt
	}
	return nil
}

// current refuses access tokens issued before their user logged out.
func (s *Server) current(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := resource.ClaimsFrom(r.Context())
		s.mu.Lock()
		out, ok := s.loggedOut[c.Subject]
		s.mu.Unlock()
		if ok && !c.IssuedAt.After(out) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="notes", error="invalid_token", error_description="the user has logged out"`)
			writeProblem(w, http.StatusUnauthorized, "logged_out", "the user has logged out; log in again")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Note is one note.
type Note struct {
	ID        string    `json:"id"`
	Text      string    `json:"text"`
	Author    string    `json:"author"`
	CreatedAt time.Time `json:"created_at"`
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"items": s.notes.list()})
}

// create charges one credit, then stores the note. The ledger reference is
// the client's Idempotency-Key when given, so a retried POST is neither
// charged nor stored twice.
func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	c := resource.ClaimsFrom(r.Context())
	var body struct {
		Text string `json:"text"`
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || strings.TrimSpace(body.Text) == "" {
		writeProblem(w, http.StatusBadRequest, "invalid_request", "a JSON body with a non-empty text is required")
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		key = newID()
	}
	if n, ok := s.notes.byKey(c.Subject, key); ok {
		writeJSON(w, http.StatusOK, n)
		return
	}
	_, err := s.credits.Spend(r.Context(), resource.ForUser(c.Subject), 1, "notes:"+key, "note")
	switch {
	case errors.Is(err, resource.ErrInsufficientCredits):
		writeProblem(w, http.StatusPaymentRequired, "insufficient_credits", "writing a note costs 1 credit")
		return
	case errors.Is(err, resource.ErrReferenceConflict):
		writeProblem(w, http.StatusConflict, "idempotency_key_reused", "this Idempotency-Key was used for another request")
		return
	case err != nil:
		writeProblem(w, http.StatusServiceUnavailable, "unavailable", "credits cannot be charged right now")
		return
	}
	n := s.notes.add(c.Subject, key, Note{ID: newID(), Text: body.Text, Author: c.Subject, CreatedAt: time.Now().UTC()})
	writeJSON(w, http.StatusCreated, n)
}

func newID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeProblem(w http.ResponseWriter, status int, code, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "urn:notes:problem:" + code, "title": http.StatusText(status),
		"status": status, "detail": detail})
}
