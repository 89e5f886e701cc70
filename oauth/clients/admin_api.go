package clients

import (
	"encoding/json"
	"net/http"

	"github.com/gorilla/mux"
	"go.uber.org/zap"

	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/internal/authn"
	"github.com/authd/authd/internal/problem"
	"github.com/authd/authd/storage/fositestore"
)

// AdminHandler serves the client routes of the admin API.
//
// Audit: every change writes its audit event in the change's own
// transaction, so the two commit or fail together.
type AdminHandler struct {
	clients *Registry
	log     *zap.Logger
}

// NewAdminHandler returns the admin API handler for clients.
func NewAdminHandler(clients *Registry, log *zap.Logger) *AdminHandler {
	if log == nil {
		log = zap.NewNop()
	}
	return &AdminHandler{clients: clients, log: log}
}

// Mount adds the routes to admin, the /admin/v1 router, each for admins only:
//
//	GET    /clients
//	POST   /clients               → 201, the client with client_secret (shown once)
//	GET    /clients/{id}
//	PATCH  /clients/{id}          fields given replace the stored ones
//	DELETE /clients/{id}          → 204; its tokens go with it
//	POST   /clients/{id}/secret   → {"client_id","client_secret"}; the old one dies
func (h *AdminHandler) Mount(admin *authn.Router) {
	admin.AdminFunc(http.MethodGet, "/clients", h.listClients)
	admin.AdminFunc(http.MethodPost, "/clients", h.createClient)
	admin.AdminFunc(http.MethodGet, "/clients/{id}", h.getClient)
	admin.AdminFunc(http.MethodPatch, "/clients/{id}", h.updateClient)
	admin.AdminFunc(http.MethodDelete, "/clients/{id}", h.deleteClient)
	admin.AdminFunc(http.MethodPost, "/clients/{id}/secret", h.rotateSecret)
}

// admin is the registry's audited changes, shared with the admin console.
func (h *AdminHandler) admin() Admin { return Admin{Registry: h.clients, Log: h.log} }

// clientBody is the JSON of POST and PATCH /clients; on PATCH only the
// fields present change (a nil pointer means absent).
type clientBody struct {
	ClientID                    *string          `json:"client_id"`
	Name                        *string          `json:"name"`
	RedirectURIs                *[]string        `json:"redirect_uris"`
	PostLogoutRedirectURIs      *[]string        `json:"post_logout_redirect_uris"`
	GrantTypes                  *[]string        `json:"grant_types"`
	ResponseTypes               *[]string        `json:"response_types"`
	Scopes                      *[]string        `json:"scopes"`
	Audience                    *[]string        `json:"audience"`
	Public                      *bool            `json:"public"`
	FirstParty                  *bool            `json:"first_party"`
	TokenEndpointAuthMethod     *string          `json:"token_endpoint_auth_method"`
	TokenEndpointAuthSigningAlg *string          `json:"token_endpoint_auth_signing_alg"`
	IDTokenSignedResponseAlg    *string          `json:"id_token_signed_response_alg"`
	JWKS                        *json.RawMessage `json:"jwks"`
	ChargeMaxPerSpend           *int64           `json:"charge_max_per_spend"`
	ChargeMaxPerUserDay         *int64           `json:"charge_max_per_user_day"`
	JWKSURI                     *string          `json:"jwks_uri"`
	RequirePAR                  *bool            `json:"require_pushed_authorization_requests"`
	RequireMFA                  *bool            `json:"require_mfa"`
	BackchannelLogoutURI        *string          `json:"backchannel_logout_uri"`
	BackchannelSessionRequired  *bool            `json:"backchannel_logout_session_required"`
}

// apply overlays the fields present in b on spec and names them.
func (b *clientBody) apply(spec *Spec) []string {
	var changed []string
	set := func(name string, present bool, assign func()) {
		if present {
			assign()
			changed = append(changed, name)
		}
	}
	set("name", b.Name != nil, func() { spec.Name = *b.Name })
	set("redirect_uris", b.RedirectURIs != nil, func() { spec.RedirectURIs = *b.RedirectURIs })
	set("post_logout_redirect_uris", b.PostLogoutRedirectURIs != nil, func() { spec.PostLogoutRedirectURIs = *b.PostLogoutRedirectURIs })
	set("grant_types", b.GrantTypes != nil, func() {
		spec.GrantTypes = *b.GrantTypes
		spec.ResponseTypes = nil // re-derived from the grants unless given below
	})
	set("response_types", b.ResponseTypes != nil, func() { spec.ResponseTypes = *b.ResponseTypes })
	set("scopes", b.Scopes != nil, func() { spec.Scopes = *b.Scopes })
	set("audience", b.Audience != nil, func() { spec.Audience = *b.Audience })
	set("public", b.Public != nil, func() { spec.Public = *b.Public })
	set("first_party", b.FirstParty != nil, func() { spec.FirstParty = *b.FirstParty })
	set("token_endpoint_auth_method", b.TokenEndpointAuthMethod != nil, func() { spec.TokenEndpointAuthMethod = *b.TokenEndpointAuthMethod })
	set("token_endpoint_auth_signing_alg", b.TokenEndpointAuthSigningAlg != nil, func() { spec.TokenEndpointAuthSigningAlg = *b.TokenEndpointAuthSigningAlg })
	set("id_token_signed_response_alg", b.IDTokenSignedResponseAlg != nil, func() { spec.IDTokenSignedResponseAlg = *b.IDTokenSignedResponseAlg })
	set("jwks", b.JWKS != nil, func() { spec.JWKS = *b.JWKS })
	set("charge_max_per_spend", b.ChargeMaxPerSpend != nil, func() { spec.ChargeMaxPerSpend = *b.ChargeMaxPerSpend })
	set("charge_max_per_user_day", b.ChargeMaxPerUserDay != nil, func() { spec.ChargeMaxPerUserDay = *b.ChargeMaxPerUserDay })
	set("jwks_uri", b.JWKSURI != nil, func() { spec.JWKSURI = *b.JWKSURI })
	set("require_pushed_authorization_requests", b.RequirePAR != nil, func() { spec.RequirePushedAuthorizationRequests = *b.RequirePAR })
	set("require_mfa", b.RequireMFA != nil, func() { spec.RequireMFA = *b.RequireMFA })
	set("backchannel_logout_uri", b.BackchannelLogoutURI != nil, func() { spec.BackchannelLogoutURI = *b.BackchannelLogoutURI })
	set("backchannel_logout_session_required", b.BackchannelSessionRequired != nil, func() {
		spec.BackchannelLogoutSessionRequired = *b.BackchannelSessionRequired
	})
	return changed
}

// specOf is the spec that would register c as it is.
func specOf(c *fositestore.Client) Spec {
	return Spec{
		ID: c.ID, Name: c.Name, RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
		GrantTypes: c.GrantTypes, ResponseTypes: c.ResponseTypes, Scopes: c.Scopes, Audience: c.Audience,
		Public: c.Public, FirstParty: c.FirstParty, TokenEndpointAuthMethod: c.TokenEndpointAuthMethod,
		JWKS: c.JWKS, JWKSURI: c.JWKSURI, TokenEndpointAuthSigningAlg: c.TokenEndpointAuthSigningAlg,
		IDTokenSignedResponseAlg: c.IDTokenSignedResponseAlg,
		ChargeMaxPerSpend:        c.ChargeMaxPerSpend, ChargeMaxPerUserDay: c.ChargeMaxPerUserDay,
		RequirePushedAuthorizationRequests: c.RequirePushedAuthorizationRequests,
		RequireMFA:                         c.RequireMFA,
		BackchannelLogoutURI:               c.BackchannelLogoutURI,
		BackchannelLogoutSessionRequired:   c.BackchannelLogoutSessionRequired,
	}
}

// clientWithSecret is a client as the API shows it; ClientSecret is set only
// in the answer that generated it.
type clientWithSecret struct {
	*fositestore.Client
	ClientSecret string `json:"client_secret,omitempty"`
}

func (h *AdminHandler) listClients(w http.ResponseWriter, r *http.Request) {
	cls, err := h.clients.ListClients(r.Context())
	if err != nil {
		problem.Write(w, r, Problem(err))
		return
	}
	if cls == nil {
		cls = []*fositestore.Client{}
	}
	problem.WriteJSON(w, http.StatusOK, map[string]any{"items": cls})
}

func (h *AdminHandler) getClient(w http.ResponseWriter, r *http.Request) {
	c, err := h.clients.GetClient(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		problem.Write(w, r, Problem(err))
		return
	}
	problem.WriteJSON(w, http.StatusOK, c)
}

func (h *AdminHandler) createClient(w http.ResponseWriter, r *http.Request) {
	var body clientBody
	if err := problem.DecodeJSON(w, r, &body); err != nil {
		problem.Write(w, r, Problem(err))
		return
	}
	var spec Spec
	if body.ClientID != nil {
		spec.ID = *body.ClientID
	}
	body.apply(&spec)
	c, secret, err := h.admin().Create(r.Context(), audit.AdminOrigin(r), spec)
	if err != nil {
		problem.Write(w, r, Problem(err))
		return
	}
	w.Header().Set("Location", "/admin/v1/clients/"+c.ID)
	problem.WriteJSON(w, http.StatusCreated, clientWithSecret{Client: c, ClientSecret: secret})
}

func (h *AdminHandler) updateClient(w http.ResponseWriter, r *http.Request) {
	var body clientBody
	if err := problem.DecodeJSON(w, r, &body); err != nil {
		problem.Write(w, r, Problem(err))
		return
	}
	if body.ClientID != nil {
		problem.Write(w, r, problem.Invalid("client_id", "a client's id cannot change"))
		return
	}
	c, secret, err := h.admin().Update(r.Context(), audit.AdminOrigin(r), mux.Vars(r)["id"], body.apply)
	if err != nil {
		problem.Write(w, r, Problem(err))
		return
	}
	problem.WriteJSON(w, http.StatusOK, clientWithSecret{Client: c, ClientSecret: secret})
}

func (h *AdminHandler) deleteClient(w http.ResponseWriter, r *http.Request) {
	err := h.admin().Delete(r.Context(), audit.AdminOrigin(r), mux.Vars(r)["id"])
	if err != nil {
		problem.Write(w, r, Problem(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *AdminHandler) rotateSecret(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	secret, err := h.admin().RotateSecret(r.Context(), audit.AdminOrigin(r), id)
	if err != nil {
		problem.Write(w, r, Problem(err))
		return
	}
	problem.WriteJSON(w, http.StatusOK, map[string]string{"client_id": id, "client_secret": secret})
}
