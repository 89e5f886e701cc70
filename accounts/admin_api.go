package accounts

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"go.uber.org/zap"

	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/internal/authn"
	"github.com/authd/authd/internal/problem"
)

// AdminHandler serves the user, role and audit routes of the admin API.
type AdminHandler struct {
	svc *Service
	log *zap.Logger
}

// NewAdminHandler returns the admin API handler over svc.
func NewAdminHandler(svc *Service, log *zap.Logger) *AdminHandler {
	if log == nil {
		log = zap.NewNop()
	}
	return &AdminHandler{svc: svc, log: log}
}

// Mount adds the routes to admin, the /admin/v1 router, each for admins only:
//
//	GET    /users                    ?q=&role=&disabled=&cursor=&limit=
//	GET    /users/{id}
//	DELETE /users/{id}               → {"id","outcome":"deleted"|"anonymised"}
//	POST   /users/{id}/disable       ?revoke_sessions=false keeps sessions/tokens
//	POST   /users/{id}/enable
//	DELETE /users/{id}/mfa           every second factor; sessions and tokens revoked
//	PUT    /users/{id}/roles/{role}
//	DELETE /users/{id}/roles/{role}  ?revoke_sessions=false skips revocation
//	GET    /roles
//	POST   /roles                    {"name","description"}
//	DELETE /roles/{name}
//	GET    /audit                    ?actor=&target=&type=&cursor=&limit=
//	GET    /backchannel-logouts      ?status=pending|failed|delivered&client_id=&limit=
func (h *AdminHandler) Mount(admin *authn.Router) {
	admin.AdminFunc(http.MethodGet, "/users", h.listUsers)
	admin.AdminFunc(http.MethodGet, "/users/{id}", h.getUser)
	admin.AdminFunc(http.MethodDelete, "/users/{id}", h.deleteUser)
	admin.AdminFunc(http.MethodPost, "/users/{id}/disable", h.setDisabled(true))
	admin.AdminFunc(http.MethodPost, "/users/{id}/enable", h.setDisabled(false))
	admin.AdminFunc(http.MethodDelete, "/users/{id}/mfa", h.resetFactors)
	admin.AdminFunc(http.MethodPut, "/users/{id}/roles/{role}", h.assignRole)
	admin.AdminFunc(http.MethodDelete, "/users/{id}/roles/{role}", h.unassignRole)
	admin.AdminFunc(http.MethodGet, "/roles", h.listRoles)
	admin.AdminFunc(http.MethodPost, "/roles", h.createRole)
	admin.AdminFunc(http.MethodDelete, "/roles/{name}", h.deleteRole)
	admin.AdminFunc(http.MethodGet, "/audit", h.listAudit)
	admin.AdminFunc(http.MethodGet, "/backchannel-logouts", h.listLogoutDeliveries)
}

// adminProblem translates the admin operations' errors: an unknown user is
// named as such; the others are the package's wire errors.
func adminProblem(err error) error { return adminWireErrors.Map(err) }

func (h *AdminHandler) fail(w http.ResponseWriter, r *http.Request, err error) {
	problem.Write(w, r, adminProblem(err))
}

// boolParam reads an optional boolean query parameter.
func boolParam(r *http.Request, name string, def bool) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, problem.Invalid(name, name+" must be true or false")
	}
	return b, nil
}

// limitParam reads the optional page size.
func limitParam(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxPageSize {
		return 0, problem.Invalid("limit", "limit must be an integer between 1 and "+strconv.Itoa(MaxPageSize))
	}
	return n, nil
}

func (h *AdminHandler) listUsers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := UserFilter{Query: q.Get("q"), Role: q.Get("role"), Cursor: q.Get("cursor")}
	var err error
	if f.Limit, err = limitParam(r); err != nil {
		h.fail(w, r, err)
		return
	}
	if q.Get("disabled") != "" {
		d, err := boolParam(r, "disabled", false)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		f.Disabled = &d
	}
	page, err := h.svc.ListUsers(r.Context(), f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	problem.WriteJSON(w, http.StatusOK, page)
}

func (h *AdminHandler) getUser(w http.ResponseWriter, r *http.Request) {
	u, err := h.svc.User(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		h.fail(w, r, err)
		return
	}
	problem.WriteJSON(w, http.StatusOK, u)
}

func (h *AdminHandler) deleteUser(w http.ResponseWriter, r *http.Request) {
	res, err := h.svc.DeleteUser(r.Context(), audit.AdminOrigin(r), mux.Vars(r)["id"])
	if err != nil {
		h.fail(w, r, err)
		return
	}
	problem.WriteJSON(w, http.StatusOK, res)
}

func (h *AdminHandler) setDisabled(disabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		revoke, err := boolParam(r, "revoke_sessions", true)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		u, err := h.svc.SetDisabled(r.Context(), audit.AdminOrigin(r), mux.Vars(r)["id"], disabled, revoke)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		problem.WriteJSON(w, http.StatusOK, u)
	}
}

// userRoles is the answer of the role assignment routes.
type userRoles struct {
	ID    string   `json:"id"`
	Roles []string `json:"roles"`
}

func (h *AdminHandler) assignRole(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	roles, err := h.svc.AssignRole(r.Context(), audit.AdminOrigin(r), v["id"], v["role"])
	if err != nil {
		h.fail(w, r, err)
		return
	}
	problem.WriteJSON(w, http.StatusOK, userRoles{ID: v["id"], Roles: roles})
}

func (h *AdminHandler) unassignRole(w http.ResponseWriter, r *http.Request) {
	revoke, err := boolParam(r, "revoke_sessions", true)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	v := mux.Vars(r)
	roles, err := h.svc.UnassignRole(r.Context(), audit.AdminOrigin(r), v["id"], v["role"], revoke)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	problem.WriteJSON(w, http.StatusOK, userRoles{ID: v["id"], Roles: roles})
}

func (h *AdminHandler) listRoles(w http.ResponseWriter, r *http.Request) {
	roles, err := h.svc.ListRoles(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	problem.WriteJSON(w, http.StatusOK, map[string]any{"items": roles})
}

func (h *AdminHandler) createRole(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	}
	if err := problem.DecodeJSON(w, r, &body); err != nil {
		h.fail(w, r, err)
		return
	}
	role, err := h.svc.CreateRole(r.Context(), audit.AdminOrigin(r), body.Name, body.Description)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/admin/v1/roles/"+role.Name)
	problem.WriteJSON(w, http.StatusCreated, role)
}

func (h *AdminHandler) deleteRole(w http.ResponseWriter, r *http.Request) {
	if err := h.svc.DeleteRole(r.Context(), audit.AdminOrigin(r), mux.Vars(r)["name"]); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *AdminHandler) listAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := AuditFilter{ActorID: q.Get("actor"), TargetID: q.Get("target"), Type: q.Get("type"), Cursor: q.Get("cursor")}
	var err error
	for name, t := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if v := q.Get(name); v != "" {
			if *t, err = time.Parse(time.RFC3339, v); err != nil {
				h.fail(w, r, problem.Invalid(name, name+" must be an RFC 3339 time, e.g. 2026-12-03T00:00:00Z"))
				return
			}
		}
	}
	if f.Limit, err = limitParam(r); err != nil {
		h.fail(w, r, err)
		return
	}
	page, err := h.svc.ListAudit(r.Context(), f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	problem.WriteJSON(w, http.StatusOK, page)
}
