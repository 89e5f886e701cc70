package federation

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/authd/authd/accounts"
)

// Kind is how authd talks to a provider.
type Kind string

const (
	// KindOIDC is OpenID Connect: discovery from the issuer, a verified ID token.
	KindOIDC Kind = "oidc"
	// KindGitHub is GitHub's OAuth 2.0 with its user API (no ID token).
	KindGitHub Kind = "github"
)

// Presets name the shapes Spec.Preset accepts.
const (
	PresetOIDC      = "oidc"
	PresetGoogle    = "google"
	PresetMicrosoft = "microsoft"
	PresetGitHub    = "github"
)

// Errors of the provider registry.
var (
	ErrNotFound    = errors.New("federation: no such provider")
	ErrSlugTaken   = errors.New("federation: a provider with this name exists")
	ErrSecretKey   = errors.New("federation: the client secret does not decrypt (AUTHD_SECRETS_KEY changed?)")
	ErrUnsupported = errors.New("federation: unsupported preset")
)

// SpecError is a provider setting that is refused; Field names it.
type SpecError struct{ Field, Reason string }

func (e *SpecError) Error() string { return fmt.Sprintf("federation: %s %s", e.Field, e.Reason) }

// Provider is a registered upstream identity provider. The client secret
// never leaves the package in clear except to the upstream's token endpoint.
type Provider struct {
	ID           string    `json:"id"`
	Slug         string    `json:"slug"`
	DisplayName  string    `json:"display_name"`
	Kind         Kind      `json:"kind"`
	Issuer       string    `json:"issuer,omitempty"`
	AuthURL      string    `json:"auth_url,omitempty"`
	TokenURL     string    `json:"token_url,omitempty"`
	APIURL       string    `json:"api_url,omitempty"`
	ClientID     string    `json:"client_id"`
	Scopes       []string  `json:"scopes"`
	EmailClaim   string    `json:"email_claim"`
	NameClaim    string    `json:"name_claim"`
	RolesClaim   string    `json:"roles_claim,omitempty"`
	AllowedRoles []string  `json:"allowed_roles"`
	AllowSignup  bool      `json:"allow_signup"`
	Enabled      bool      `json:"enabled"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`

	clientSecret string
}

// Spec is a provider to register. Preset fills the endpoints, scopes and
// display name of the well-known providers; fields given override them.
type Spec struct {
	Slug        string
	DisplayName string
	Preset      string // oidc (default), google, microsoft, github
	Issuer      string // oidc
	Tenant      string // microsoft: the directory (tenant) id or domain
	// AuthURL, TokenURL and APIURL replace GitHub's endpoints (GitHub
	// Enterprise Server).
	AuthURL, TokenURL, APIURL string
	ClientID                  string
	ClientSecret              string
	Scopes                    []string
	EmailClaim, NameClaim     string
	RolesClaim                string
	AllowedRoles              []string
	AllowSignup               bool
	Disabled                  bool
}

var slugRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// provider applies the preset and checks every field.
func (s Spec) provider() (*Provider, error) {
	p := &Provider{Slug: strings.TrimSpace(s.Slug), DisplayName: strings.TrimSpace(s.DisplayName), Issuer: strings.TrimSpace(s.Issuer),
		AuthURL: s.AuthURL, TokenURL: s.TokenURL, APIURL: s.APIURL, ClientID: strings.TrimSpace(s.ClientID), clientSecret: s.ClientSecret,
		Scopes: s.Scopes, EmailClaim: s.EmailClaim, NameClaim: s.NameClaim, RolesClaim: s.RolesClaim,
		AllowedRoles: s.AllowedRoles, AllowSignup: s.AllowSignup, Enabled: !s.Disabled}
	preset := s.Preset
	if preset == "" {
		preset = PresetOIDC
	}
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	switch preset {
	case PresetOIDC:
		p.Kind = KindOIDC
	case PresetGoogle:
		p.Kind = KindOIDC
		def(&p.Issuer, "https://accounts.google.com")
		def(&p.DisplayName, "Google")
		def(&p.Slug, "google")
	case PresetMicrosoft:
		p.Kind = KindOIDC
		t := strings.TrimSpace(s.Tenant)
		// The multi-tenant aliases have no single issuer to verify tokens
		// against: each tenant signs as itself.
		if p.Issuer == "" && (t == "" || slices.Contains([]string{"common", "organizations", "consumers"}, t) || strings.ContainsAny(t, "/?#")) {
			return nil, &SpecError{Field: "tenant", Reason: "must be your directory (tenant) id or domain; common, organizations and consumers have no single issuer"}
		}
		def(&p.Issuer, "https://login.microsoftonline.com/"+t+"/v2.0")
		def(&p.DisplayName, "Microsoft")
		def(&p.Slug, "microsoft")
	case PresetGitHub:
		p.Kind = KindGitHub
		def(&p.AuthURL, "https://github.com/login/oauth/authorize")
		def(&p.TokenURL, "https://github.com/login/oauth/access_token")
		def(&p.APIURL, "https://api.github.com")
		def(&p.DisplayName, "GitHub")
		def(&p.Slug, "github")
		if len(p.Scopes) == 0 {
			p.Scopes = []string{"read:user", "user:email"}
		}
	default:
		return nil, &SpecError{Field: "preset", Reason: "must be oidc, google, microsoft or github"}
	}
	if p.Kind == KindOIDC {
		if len(p.Scopes) == 0 {
			p.Scopes = []string{"openid", "email", "profile"}
		}
		if !slices.Contains(p.Scopes, "openid") {
			p.Scopes = append([]string{"openid"}, p.Scopes...)
		}
		p.AuthURL, p.TokenURL, p.APIURL = "", "", ""
	}
	def(&p.EmailClaim, "email")
	def(&p.NameClaim, "name")
	if p.AllowedRoles == nil {
		p.AllowedRoles = []string{}
	}
	return p, p.validate()
}

// validate checks a provider as it would be stored.
func (p *Provider) validate() error {
	if !slugRE.MatchString(p.Slug) {
		return &SpecError{Field: "slug", Reason: "must be 1–32 lower-case letters, digits or '-', starting with a letter"}
	}
	if p.DisplayName == "" {
		p.DisplayName = p.Slug
	}
	if n, err := accounts.CheckName("display_name", p.DisplayName); err != nil || len(n) > 64 {
		return &SpecError{Field: "display_name", Reason: "must be one line of at most 64 characters"}
	}
	switch p.Kind {
	case KindOIDC:
		if err := checkURL(p.Issuer); err != nil {
			return &SpecError{Field: "issuer", Reason: err.Error()}
		}
	case KindGitHub:
		for _, f := range []struct{ name, v string }{{"auth_url", p.AuthURL}, {"token_url", p.TokenURL}, {"api_url", p.APIURL}} {
			if err := checkURL(f.v); err != nil {
				return &SpecError{Field: f.name, Reason: err.Error()}
			}
		}
	}
	if p.ClientID == "" || len(p.ClientID) > 512 {
		return &SpecError{Field: "client_id", Reason: "is required (at most 512 characters)"}
	}
	if p.clientSecret == "" || len(p.clientSecret) > 1024 {
		return &SpecError{Field: "client_secret", Reason: "is required (at most 1024 characters)"}
	}
	for _, sc := range p.Scopes {
		if sc == "" || len(sc) > 128 || strings.ContainsAny(sc, " \t\r\n\"\\") {
			return &SpecError{Field: "scopes", Reason: "must be single words"}
		}
	}
	for _, c := range []struct{ name, v string }{{"email_claim", p.EmailClaim}, {"name_claim", p.NameClaim}, {"roles_claim", p.RolesClaim}} {
		if len(c.v) > 128 || strings.ContainsAny(c.v, " \t\r\n") {
			return &SpecError{Field: c.name, Reason: "must be a claim name"}
		}
	}
	for _, r := range p.AllowedRoles {
		if !accounts.ValidRoleName(r) {
			return &SpecError{Field: "allowed_roles", Reason: fmt.Sprintf("%q is not a role name", r)}
		}
		if r == "admin" {
			// An upstream must never mint administrators.
			return &SpecError{Field: "allowed_roles", Reason: "must not contain admin"}
		}
	}
	if len(p.AllowedRoles) > 0 && p.RolesClaim == "" {
		return &SpecError{Field: "roles_claim", Reason: "is required with allowed_roles"}
	}
	return nil
}

// checkURL accepts https URLs, and http only for loopback hosts (local
// development and tests).
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || u.RawQuery != "" {
		return errors.New("must be an absolute https URL without query or fragment")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if h := u.Hostname(); h == "localhost" || (net.ParseIP(h) != nil && net.ParseIP(h).IsLoopback()) {
			return nil
		}
	}
	return errors.New("must be an https URL (http only on loopback)")
}

// CallbackPath is the redirect URI path to register at the upstream for
// the provider named slug, under authd's issuer URL.
func CallbackPath(slug string) string { return "/login/federated/" + slug + "/callback" }
