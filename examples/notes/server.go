package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/authd/authd/resource"
)

// Config is the service's configuration.
type Config struct {
	Issuer       string
	Audience     string // default urn:authd:notes
	ClientID     string
	ClientSecret string
}

// Server is the notes API. It is an http.Handler.
type Server struct {
	verifier *resource.Verifier
	credits  *resource.Credits
	notes    *store
	mux      *http.ServeMux
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
	s := &Server{verifier: v, credits: c, notes: newStore(), mux: http.NewServeMux()}
	// The whole protection of the API is these two lines.
	s.mux.Handle("GET /notes", v.Require(v.RequireScope("notes:read")(http.HandlerFunc(s.list))))
	s.mux.Handle("POST /notes", v.Require(v.RequireRole("editor")(http.HandlerFunc(s.create))))
	return s, nil
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
