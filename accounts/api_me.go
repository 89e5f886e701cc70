package accounts

import (
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/authd/authd/internal/authn"
	"github.com/authd/authd/internal/problem"
	"github.com/authd/authd/internal/ratelimit"
)

// proof is the bearer token's login time with the current password the
// request may carry.
func proof(r *http.Request, password string) Proof {
	p := Proof{Password: password}
	if pr := authn.FromContext(r.Context()); pr != nil {
		p.AuthTime = pr.AuthTime
	}
	return p
}

// userID returns the bearer token's user, or writes 401/403 and "".
func userID(w http.ResponseWriter, r *http.Request) string {
	p := authn.FromContext(r.Context())
	if p == nil {
		problem.Write(w, r, problem.ErrUnauthorized)
		return ""
	}
	if !p.IsUser() {
		problem.Write(w, r, wireErrors.Map(errNotUserToken))
		return ""
	}
	return p.UserID
}

func (h *Handler) me(w http.ResponseWriter, r *http.Request) {
	uid := userID(w, r)
	if uid == "" {
		return
	}
	u, err := h.svc.User(r.Context(), uid)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	// The address is the email scope's, as at /userinfo (or the account
	// scope's, which changes it): profile alone shows name and roles.
	if p := authn.FromContext(r.Context()); !p.HasScope("email") && !p.HasScope(ScopeAccount) {
		problem.WriteJSON(w, http.StatusOK, profileView{ID: u.ID, Name: u.Name, Disabled: u.Disabled,
			Roles: u.Roles, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt})
		return
	}
	problem.WriteJSON(w, http.StatusOK, u)
}

// profileView is a User without its email addresses.
type profileView struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Disabled  bool      `json:"disabled"`
	Roles     []string  `json:"roles"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func (h *Handler) patchMe(w http.ResponseWriter, r *http.Request) {
	uid := userID(w, r)
	if uid == "" {
		return
	}
	var req struct {
		Name            *string `json:"name"`
		Email           *string `json:"email"`
		CurrentPassword string  `json:"current_password"`
	}
	if err := problem.DecodeJSON(w, r, &req); err != nil {
		problem.Write(w, r, err)
		return
	}
	if req.Email != nil && h.cfg.Limits.EmailChange != nil {
		if ok, wait := h.cfg.Limits.EmailChange.Allow(ratelimit.ClientIP(r)); !ok {
			writeErr(w, r, &TooSoonError{RetryAfter: wait})
			return
		}
	}
	u, err := h.svc.UpdateProfile(r.Context(), uid, ProfileUpdate{Name: req.Name, Email: req.Email, Proof: proof(r, req.CurrentPassword)})
	if err != nil {
		writeErr(w, r, err)
		return
	}
	problem.WriteJSON(w, http.StatusOK, u)
}

func (h *Handler) changePassword(w http.ResponseWriter, r *http.Request) {
	uid := userID(w, r)
	if uid == "" {
		return
	}
	var req struct {
		CurrentPassword string `json:"current_password"`
		NewPassword     string `json:"new_password"`
	}
	if err := problem.DecodeJSON(w, r, &req); err != nil {
		problem.Write(w, r, err)
		return
	}
	// An API caller has no browser session of its own: every session ends.
	if err := h.svc.ChangePassword(r.Context(), uid, proof(r, req.CurrentPassword), req.NewPassword); err != nil {
		writeErr(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) resend(w http.ResponseWriter, r *http.Request) {
	uid := userID(w, r)
	if uid == "" {
		return
	}
	if err := h.svc.ResendVerification(r.Context(), uid); err != nil {
		writeErr(w, r, err)
		return
	}
	problem.WriteJSON(w, http.StatusAccepted, map[string]string{"status": "sent"})
}

// SessionList is the body of GET /api/v1/me/sessions.
type SessionList struct {
	Items []Session `json:"items"`
}

func (h *Handler) sessions(w http.ResponseWriter, r *http.Request) {
	uid := userID(w, r)
	if uid == "" {
		return
	}
	list, err := h.svc.Sessions(r.Context(), uid)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	if list == nil {
		list = []Session{}
	}
	problem.WriteJSON(w, http.StatusOK, SessionList{Items: list})
}

func (h *Handler) endSession(w http.ResponseWriter, r *http.Request) {
	uid := userID(w, r)
	if uid == "" {
		return
	}
	if err := h.svc.EndSession(r.Context(), uid, mux.Vars(r)["id"]); err != nil {
		writeErr(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
