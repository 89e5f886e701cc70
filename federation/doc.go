// Package federation lets people log in to authd with another identity
// provider: upstream OpenID Connect providers (by issuer, with discovery;
// presets for Google and Microsoft) and GitHub (OAuth 2.0 and its user API).
//
// Providers are data (provider.go, store.go): an administrator registers
// them through the admin API or the CLI; the client secret is sealed with a
// key derived from AUTHD_SECRETS_KEY. The flow (flow.go) is the
// authorization code grant with PKCE (S256), state and nonce, its state kept
// in a short-lived sealed cookie bound to the browser; an upstream ID token
// is verified against the provider's discovery document and JWKS, which
// go-oidc refetches when a token names an unknown key.
//
// What a verified upstream identity may do is decided in one place,
// Service.resolve (login.go): a linked identity logs its user in; an unknown
// one creates an account through the same registration path as a password
// sign-up (accounts.RegisterUpstream) only when the provider may create
// accounts and no account holds the address; an address that an account
// already holds is never linked silently: the person proves the account with
// its password or a mailed link (pages.go), and a provider that does not
// assert the address as verified cannot reach that account at all.
package federation
