package accounts

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/internal/problem"
)

// factorsReset is the answer of DELETE /admin/v1/users/{id}/mfa.
type factorsReset struct {
	ID      string   `json:"id"`
	Factors []string `json:"factors"`
}

// resetFactors is DELETE /users/{id}/mfa: every second factor of the user
// goes (ResetFactors: audited, mailed, sessions and tokens revoked).
func (h *AdminHandler) resetFactors(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	if err := h.svc.ResetFactors(r.Context(), audit.AdminOrigin(r), id); err != nil {
		h.fail(w, r, err)
		return
	}
	problem.WriteJSON(w, http.StatusOK, factorsReset{ID: id, Factors: []string{}})
}
