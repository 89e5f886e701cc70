package loginui

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gorilla/mux"

	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/internal/problem"
	"github.com/authd/authd/storage/fositestore"
)

// ClientForm is the editable part of an OAuth client in the console.
type ClientForm struct {
	Name                    string
	RedirectURIs            []string
	PostLogoutRedirectURIs  []string
	GrantTypes              []string
	Scopes                  []string
	Public, FirstParty      bool
	TokenEndpointAuthMethod string
	// RequireMFA and RequirePAR are the client's policy flags: its users
	// pass a second factor; it starts every authorization at /oauth2/par.
	RequireMFA, RequirePAR bool
	// BackchannelLogoutURI and BackchannelLogoutSessionRequired are the
	// client's OIDC Back-Channel Logout registration.
	BackchannelLogoutURI             string
	BackchannelLogoutSessionRequired bool
}

// ConsoleClients is what the console needs of the client registry: the
// changes record their audit event in their own transaction (cmd/authd
// adapts clients.Admin, which the admin API uses too). Errors are
// *problem.Error values naming the invalid field, or not-found (404).
type ConsoleClients interface {
	List(ctx context.Context) ([]*fositestore.Client, error)
	Get(ctx context.Context, id string) (*fositestore.Client, error)
	Create(ctx context.Context, origin audit.Event, f ClientForm) (*fositestore.Client, string, error)
	Update(ctx context.Context, origin audit.Event, id string, f ClientForm) (*fositestore.Client, string, error)
	Delete(ctx context.Context, origin audit.Event, id string) error
	RotateSecret(ctx context.Context, origin audit.Event, id string) (string, error)
	// KnownScopes lists the scopes a client may be registered with.
	KnownScopes() []string
}

// GrantTypes are the grants the console offers.
var consoleGrants = []string{"authorization_code", "refresh_token", "client_credentials", "password"}

// AdminClientsData is the data of templates/admin_clients.html.
type AdminClientsData struct {
	ConsoleNav
	Clients []*fositestore.Client
	Form    ClientFormView
}

// AdminClientData is the data of templates/admin_client.html.
type AdminClientData struct {
	ConsoleNav
	Client *fositestore.Client
	Form   ClientFormView
	// Secret is a newly generated secret, shown on this page only.
	Secret string
}

// Choice is one checkbox of a form.
type Choice struct {
	Name string
	On   bool
}

// ClientFormView is the client form with its choices.
type ClientFormView struct {
	ClientForm
	Grants             []Choice
	KnownScopes        []string
	Methods            []string
	Redirects, Logouts string // one URI a line
	ScopeText          string
}

func (c *Console) formView(f ClientForm) ClientFormView {
	var grants []Choice
	for _, g := range consoleGrants {
		grants = append(grants, Choice{Name: g, On: slices.Contains(f.GrantTypes, g)})
	}
	return ClientFormView{ClientForm: f, Grants: grants, KnownScopes: c.Clients.KnownScopes(),
		Methods:   []string{"client_secret_basic", "client_secret_post", "none"},
		Redirects: strings.Join(f.RedirectURIs, "\n"), Logouts: strings.Join(f.PostLogoutRedirectURIs, "\n"),
		ScopeText: strings.Join(f.Scopes, " ")}
}

func formOf(cl *fositestore.Client) ClientForm {
	return ClientForm{Name: cl.Name, RedirectURIs: cl.RedirectURIs, PostLogoutRedirectURIs: cl.PostLogoutRedirectURIs,
		GrantTypes: cl.GrantTypes, Scopes: cl.Scopes, Public: cl.Public, FirstParty: cl.FirstParty,
		TokenEndpointAuthMethod: cl.TokenEndpointAuthMethod,
		RequireMFA:              cl.RequireMFA, RequirePAR: cl.RequirePushedAuthorizationRequests,
		BackchannelLogoutURI: cl.BackchannelLogoutURI, BackchannelLogoutSessionRequired: cl.BackchannelLogoutSessionRequired}
}

// readClientForm reads the POSTed client form.
func readClientForm(r *http.Request) ClientForm {
	lines := func(s string) []string {
		var out []string
		for _, l := range strings.Split(s, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, l)
			}
		}
		return out
	}
	var grants []string
	for _, g := range r.PostForm["grant_types"] {
		if slices.Contains(consoleGrants, g) && !slices.Contains(grants, g) {
			grants = append(grants, g)
		}
	}
	return ClientForm{Name: r.PostFormValue("name"), RedirectURIs: lines(r.PostFormValue("redirect_uris")),
		PostLogoutRedirectURIs: lines(r.PostFormValue("post_logout_redirect_uris")), GrantTypes: grants,
		Scopes: strings.Fields(r.PostFormValue("scopes")), Public: r.PostFormValue("public") == "on",
		FirstParty: r.PostFormValue("first_party") == "on", TokenEndpointAuthMethod: r.PostFormValue("token_endpoint_auth_method"),
		RequireMFA:                       r.PostFormValue("require_mfa") == "on",
		RequirePAR:                       r.PostFormValue("require_pushed_authorization_requests") == "on",
		BackchannelLogoutURI:             strings.TrimSpace(r.PostFormValue("backchannel_logout_uri")),
		BackchannelLogoutSessionRequired: r.PostFormValue("backchannel_logout_session_required") == "on"}
}

// clientMessage is the message and status of a registry error the admin can
// act on; ("", 0) for others.
func clientMessage(err error) (string, int) {
	var pe *problem.Error
	if errors.As(err, &pe) && pe.Status >= 400 && pe.Status < 500 {
		msg := pe.Detail
		if msg == "" {
			msg = pe.Title
		}
		if pe.Field != "" {
			f := strings.ReplaceAll(pe.Field, "_", " ")
			msg = strings.ToUpper(f[:1]) + f[1:] + ": " + msg
		}
		return msg, pe.Status
	}
	return "", 0
}

func (c *Console) clients(w http.ResponseWriter, r *http.Request, _ consoleReq) {
	note := map[string]string{"deleted": "The client was deleted, with every token issued to it."}[r.URL.Query().Get("done")]
	c.renderClients(w, r, http.StatusOK, note, "", ClientForm{GrantTypes: []string{"authorization_code", "refresh_token"},
		Scopes: []string{"openid", "profile", "email", "offline_access"}})
}

func (c *Console) renderClients(w http.ResponseWriter, r *http.Request, status int, note, errMsg string, f ClientForm) {
	list, err := c.Clients.List(r.Context())
	if err != nil {
		c.fail(w, r, "admin console: clients", err)
		return
	}
	c.UI.Render(w, r, status, "admin_clients", Page{Title: "OAuth clients", LoggedIn: true, Notice: note, Error: errMsg,
		Data: AdminClientsData{ConsoleNav: ConsoleNav{"clients"}, Clients: list, Form: c.formView(f)}})
}

func (c *Console) createClient(w http.ResponseWriter, r *http.Request, a consoleReq) {
	f := readClientForm(r)
	// A client's secret is a lasting credential: a stale session must
	// prove the admin is present before minting or changing one.
	if msg, status, err := c.confirm(r.Context(), r, a); err != nil {
		c.fail(w, r, "admin console: confirm", err)
		return
	} else if msg != "" {
		c.renderClients(w, r, status, "", "Registering a client: "+msg, f)
		return
	}
	cl, secret, err := c.Clients.Create(r.Context(), a.origin(r), f)
	if msg, status := clientMessage(err); msg != "" {
		c.renderClients(w, r, status, "", msg, f)
		return
	} else if err != nil {
		c.fail(w, r, "admin console: create client", err)
		return
	}
	// The secret is shown in this answer only (PageHeaders forbid caching).
	note := "The client was created."
	if secret != "" {
		note += " Copy its secret now: it is not shown again."
	}
	c.UI.Render(w, r, http.StatusCreated, "admin_client", Page{Title: cl.Name, LoggedIn: true, Notice: note,
		Data: AdminClientData{ConsoleNav: ConsoleNav{"clients"}, Client: cl, Form: c.formView(formOf(cl)), Secret: secret}})
}

func (c *Console) client(w http.ResponseWriter, r *http.Request, _ consoleReq) {
	note := map[string]string{"updated": "The client was saved."}[r.URL.Query().Get("done")]
	c.renderClient(w, r, http.StatusOK, note, "", nil)
}

// renderClient shows a client's page; f, when set, is the form as submitted.
func (c *Console) renderClient(w http.ResponseWriter, r *http.Request, status int, note, errMsg string, f *ClientForm) {
	cl, err := c.Clients.Get(r.Context(), mux.Vars(r)["client"])
	if msg, st := clientMessage(err); st == http.StatusNotFound {
		c.UI.Render(w, r, http.StatusNotFound, "message", Page{Title: "No such client", LoggedIn: true, Data: msg})
		return
	} else if err != nil {
		c.fail(w, r, "admin console: client", err)
		return
	}
	form := formOf(cl)
	if f != nil {
		form = *f
	}
	c.UI.Render(w, r, status, "admin_client", Page{Title: cl.Name, LoggedIn: true, Notice: note, Error: errMsg,
		Data: AdminClientData{ConsoleNav: ConsoleNav{"clients"}, Client: cl, Form: c.formView(form)}})
}

func clientPage(id string) string { return "/admin/clients/" + url.PathEscape(id) }

func (c *Console) updateClient(w http.ResponseWriter, r *http.Request, a consoleReq) {
	id := mux.Vars(r)["client"]
	f := readClientForm(r)
	// A client's secret is a lasting credential: a stale session must
	// prove the admin is present before minting or changing one.
	if msg, status, err := c.confirm(r.Context(), r, a); err != nil {
		c.fail(w, r, "admin console: confirm", err)
		return
	} else if msg != "" {
		c.renderClient(w, r, status, "", "Changing a client: "+msg, &f)
		return
	}
	cl, secret, err := c.Clients.Update(r.Context(), a.origin(r), id, f)
	if msg, status := clientMessage(err); msg != "" {
		c.renderClient(w, r, status, "", msg, &f)
		return
	} else if err != nil {
		c.fail(w, r, "admin console: update client", err)
		return
	}
	if secret != "" {
		c.UI.Render(w, r, http.StatusOK, "admin_client", Page{Title: cl.Name, LoggedIn: true,
			Notice: "The client was saved. It now needs a secret: copy it now, it is not shown again.",
			Data:   AdminClientData{ConsoleNav: ConsoleNav{"clients"}, Client: cl, Form: c.formView(formOf(cl)), Secret: secret}})
		return
	}
	http.Redirect(w, r, clientPage(id)+"?done=updated", http.StatusSeeOther)
}

func (c *Console) rotateClientSecret(w http.ResponseWriter, r *http.Request, a consoleReq) {
	id := mux.Vars(r)["client"]
	// A client's secret is a lasting credential: a stale session must
	// prove the admin is present before minting or changing one.
	if msg, status, err := c.confirm(r.Context(), r, a); err != nil {
		c.fail(w, r, "admin console: confirm", err)
		return
	} else if msg != "" {
		c.renderClient(w, r, status, "", "Rotating the secret: "+msg, nil)
		return
	}
	secret, err := c.Clients.RotateSecret(r.Context(), a.origin(r), id)
	if msg, status := clientMessage(err); msg != "" {
		c.renderClient(w, r, status, "", msg, nil)
		return
	} else if err != nil {
		c.fail(w, r, "admin console: rotate client secret", err)
		return
	}
	cl, err := c.Clients.Get(r.Context(), id)
	if err != nil {
		c.fail(w, r, "admin console: client", err)
		return
	}
	c.UI.Render(w, r, http.StatusOK, "admin_client", Page{Title: cl.Name, LoggedIn: true,
		Notice: "A new secret was generated and the old one no longer works. Copy it now: it is not shown again.",
		Data:   AdminClientData{ConsoleNav: ConsoleNav{"clients"}, Client: cl, Form: c.formView(formOf(cl)), Secret: secret}})
}

func (c *Console) deleteClient(w http.ResponseWriter, r *http.Request, a consoleReq) {
	err := c.Clients.Delete(r.Context(), a.origin(r), mux.Vars(r)["client"])
	if msg, status := clientMessage(err); msg != "" {
		c.renderClient(w, r, status, "", msg, nil)
		return
	} else if err != nil {
		c.fail(w, r, "admin console: delete client", err)
		return
	}
	http.Redirect(w, r, "/admin/clients?done=deleted", http.StatusSeeOther)
}
