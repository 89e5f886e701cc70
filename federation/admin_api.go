package federation

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/internal/authn"
	"github.com/authd/authd/internal/problem"
)

// AdminHandler serves the upstream providers of the admin API.
type AdminHandler struct {
	reg     *Registry
	baseURL string
}

// NewAdminHandler returns the handler; baseURL (AUTHD_ISSUER) is where the
// callback URLs it reports live.
func NewAdminHandler(reg *Registry, baseURL string) *AdminHandler {
	return &AdminHandler{reg: reg, baseURL: strings.TrimRight(baseURL, "/")}
}

// Mount adds the routes to admin, the /admin/v1 router, each for admins only:
//
//	GET    /identity-providers
//	POST   /identity-providers        → 201 (the secret is never shown back)
//	GET    /identity-providers/{id}   id or slug
//	PATCH  /identity-providers/{id}   fields given replace the stored ones
//	DELETE /identity-providers/{id}   → 204; identities linked through it go too
func (h *AdminHandler) Mount(admin *authn.Router) {
	admin.AdminFunc(http.MethodGet, "/identity-providers", h.list)
	admin.AdminFunc(http.MethodPost, "/identity-providers", h.create)
	admin.AdminFunc(http.MethodGet, "/identity-providers/{id}", h.get)
	admin.AdminFunc(http.MethodPatch, "/identity-providers/{id}", h.update)
	admin.AdminFunc(http.MethodDelete, "/identity-providers/{id}", h.delete)
}

// providerJSON is a provider as the API shows it, with the redirect URI to
// register at the upstream.
type providerJSON struct {
	*Provider
	CallbackURL string `json:"callback_url"`
}

func (h *AdminHandler) view(p *Provider) providerJSON {
	return providerJSON{Provider: p, CallbackURL: h.baseURL + CallbackPath(p.Slug)}
}

// createBody is the JSON of POST /identity-providers.
type createBody struct {
	Slug         string   `json:"slug"`
	DisplayName  string   `json:"display_name"`
	Preset       string   `json:"preset"`
	Issuer       string   `json:"issuer"`
	Tenant       string   `json:"tenant"`
	AuthURL      string   `json:"auth_url"`
	TokenURL     string   `json:"token_url"`
	APIURL       string   `json:"api_url"`
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"client_secret"`
	Scopes       []string `json:"scopes"`
	EmailClaim   string   `json:"email_claim"`
	NameClaim    string   `json:"name_claim"`
	RolesClaim   string   `json:"roles_claim"`
	AllowedRoles []string `json:"allowed_roles"`
	AllowSignup  bool     `json:"allow_signup"`
	Enabled      *bool    `json:"enabled"`
}

// updateBody is the JSON of PATCH; absent fields stay.
type updateBody struct {
	DisplayName  *string   `json:"display_name"`
	ClientID     *string   `json:"client_id"`
	ClientSecret *string   `json:"client_secret"`
	Scopes       *[]string `json:"scopes"`
	EmailClaim   *string   `json:"email_claim"`
	NameClaim    *string   `json:"name_claim"`
	RolesClaim   *string   `json:"roles_claim"`
	AllowedRoles *[]string `json:"allowed_roles"`
	AllowSignup  *bool     `json:"allow_signup"`
	Enabled      *bool     `json:"enabled"`
}

// toProblem maps the registry's errors to the API's.
func toProblem(err error) error {
	var se *SpecError
	switch {
	case errors.As(err, &se):
		return problem.Invalid(se.Field, se.Field+" "+se.Reason)
	}
	return wireErrors.Map(err)
}

// wireErrors are the registry's sentinel errors as the admin API answers
// them; a SpecError (naming its field) is translated beside them.
var wireErrors = problem.Table{
	{Err: ErrNotFound, Status: http.StatusNotFound, Code: "provider_not_found", Title: "Not Found", Detail: "no such identity provider"},
	{Err: ErrSlugTaken, Status: http.StatusConflict, Code: "provider_exists", Title: "Conflict", Detail: "an identity provider with this slug exists"},
}

func (h *AdminHandler) list(w http.ResponseWriter, r *http.Request) {
	ps, err := h.reg.List(r.Context(), false)
	if err != nil {
		problem.Write(w, r, toProblem(err))
		return
	}
	items := make([]providerJSON, len(ps))
	for i, p := range ps {
		items[i] = h.view(p)
	}
	problem.WriteJSON(w, http.StatusOK, map[string]any{"items": items})
}

func (h *AdminHandler) get(w http.ResponseWriter, r *http.Request) {
	p, err := h.reg.Get(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		problem.Write(w, r, toProblem(err))
		return
	}
	problem.WriteJSON(w, http.StatusOK, h.view(p))
}

func (h *AdminHandler) create(w http.ResponseWriter, r *http.Request) {
	var b createBody
	if err := problem.DecodeJSON(w, r, &b); err != nil {
		problem.Write(w, r, err)
		return
	}
	spec := Spec{Slug: b.Slug, DisplayName: b.DisplayName, Preset: b.Preset, Issuer: b.Issuer, Tenant: b.Tenant,
		AuthURL: b.AuthURL, TokenURL: b.TokenURL, APIURL: b.APIURL, ClientID: b.ClientID, ClientSecret: b.ClientSecret,
		Scopes: b.Scopes, EmailClaim: b.EmailClaim, NameClaim: b.NameClaim, RolesClaim: b.RolesClaim,
		AllowedRoles: b.AllowedRoles, AllowSignup: b.AllowSignup, Disabled: b.Enabled != nil && !*b.Enabled}
	p, err := h.reg.Create(r.Context(), audit.AdminOrigin(r), spec)
	if err != nil {
		problem.Write(w, r, toProblem(err))
		return
	}
	w.Header().Set("Location", "/admin/v1/identity-providers/"+p.ID)
	problem.WriteJSON(w, http.StatusCreated, h.view(p))
}

func (h *AdminHandler) update(w http.ResponseWriter, r *http.Request) {
	var b updateBody
	if err := problem.DecodeJSON(w, r, &b); err != nil {
		problem.Write(w, r, err)
		return
	}
	p, err := h.reg.Update(r.Context(), audit.AdminOrigin(r), mux.Vars(r)["id"], Update{
		DisplayName: b.DisplayName, ClientID: b.ClientID, ClientSecret: b.ClientSecret, Scopes: b.Scopes,
		EmailClaim: b.EmailClaim, NameClaim: b.NameClaim, RolesClaim: b.RolesClaim, AllowedRoles: b.AllowedRoles,
		AllowSignup: b.AllowSignup, Enabled: b.Enabled,
	})
	if err != nil {
		problem.Write(w, r, toProblem(err))
		return
	}
	problem.WriteJSON(w, http.StatusOK, h.view(p))
}

func (h *AdminHandler) delete(w http.ResponseWriter, r *http.Request) {
	if err := h.reg.Delete(r.Context(), audit.AdminOrigin(r), mux.Vars(r)["id"]); err != nil {
		problem.Write(w, r, toProblem(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
