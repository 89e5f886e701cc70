package keys

import (
	"context"
	"net/http"

	"go.uber.org/zap"

	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/internal/authn"
	"github.com/authd/authd/internal/problem"
	"github.com/authd/authd/storage"
)

// AdminHandler serves the signing-key routes of the admin API.
type AdminHandler struct {
	keys *Manager
	log  *zap.Logger
}

// NewAdminHandler returns the admin API handler for the signing keys.
func NewAdminHandler(keys *Manager, log *zap.Logger) *AdminHandler {
	if log == nil {
		log = zap.NewNop()
	}
	return &AdminHandler{keys: keys, log: log}
}

// Mount adds the routes to admin, the /admin/v1 router, each for admins only:
//
//	GET    /keys
//	POST   /keys/rotate           → the keys after rotation
func (h *AdminHandler) Mount(admin *authn.Router) {
	admin.AdminFunc(http.MethodGet, "/keys", h.listKeys)
	admin.AdminFunc(http.MethodPost, "/keys/rotate", h.rotateKeys)
}

func (h *AdminHandler) listKeys(w http.ResponseWriter, r *http.Request) {
	ks, err := h.keys.List(r.Context())
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	if ks == nil {
		ks = []KeyInfo{}
	}
	problem.WriteJSON(w, http.StatusOK, map[string]any{"items": ks})
}

func (h *AdminHandler) rotateKeys(w http.ResponseWriter, r *http.Request) {
	// The audit event commits in the rotation's own transaction.
	err := h.keys.RotateAndRecord(r.Context(), func(ctx context.Context, q storage.Querier, activating []string) error {
		e := audit.AdminOrigin(r)
		e.Type, e.TargetType, e.Details = "keys.rotated", "signing_keys", map[string]any{"activating": activating}
		return audit.Record(ctx, q, h.log, e)
	})
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	ks, err := h.keys.List(r.Context())
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	problem.WriteJSON(w, http.StatusOK, map[string]any{"items": ks})
}
