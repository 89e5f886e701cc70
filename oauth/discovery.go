package oauth

import (
	"encoding/json"
	"net/http"
)

// Scopes are the scopes authd knows; clients are registered with a subset.
var Scopes = []string{"openid", "profile", "email", "roles", "offline_access",
	"introspect", "admin", "credits:read", "credits:spend", "credits:charge", "credits:grant", "account"}

// discovery serves both /.well-known/openid-configuration and RFC 8414's
// /.well-known/oauth-authorization-server: one document advertising exactly
// what is composed in New. Every OIDC Discovery §3 field that applies is
// present; fields for features authd lacks (registration, request objects'
// algs, encryption, display, locales, acr) are left out, except those whose
// absence means "supported" (request_uri_parameter_supported defaults to
// true) and the booleans clients probe, which say false.
func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	iss := p.cfg.Issuer
	authMethods := []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"}
	// The algs private_key_jwt assertions may use; registration infers or
	// checks one of them against the client's keys (clients/keys.go).
	assertionAlgs := []string{"RS256", "ES256"}
	doc := map[string]interface{}{
		"issuer":                                           iss,
		"authorization_endpoint":                           iss + "/oauth2/auth",
		"token_endpoint":                                   iss + "/oauth2/token",
		"introspection_endpoint":                           iss + "/oauth2/introspect",
		"revocation_endpoint":                              iss + "/oauth2/revoke",
		"userinfo_endpoint":                                iss + "/userinfo",
		"end_session_endpoint":                             iss + "/oauth2/logout",
		"jwks_uri":                                         iss + "/.well-known/jwks.json",
		"scopes_supported":                                 Scopes,
		"response_types_supported":                         []string{"code"},
		"response_modes_supported":                         []string{"query", "form_post"},
		"grant_types_supported":                            supportedGrants,
		"code_challenge_methods_supported":                 []string{"S256"},
		"token_endpoint_auth_methods_supported":            authMethods,
		"token_endpoint_auth_signing_alg_values_supported": assertionAlgs,
		"introspection_endpoint_auth_methods_supported":    authMethods[:3],
		"introspection_endpoint_auth_signing_alg_values_supported": assertionAlgs,
		"device_authorization_endpoint":                            iss + "/oauth2/device/auth",
		"revocation_endpoint_auth_methods_supported":               authMethods,
		"revocation_endpoint_auth_signing_alg_values_supported":    assertionAlgs,
		"subject_types_supported":                                  []string{"public"},
		"id_token_signing_alg_values_supported":                    []string{"RS256", "ES256"},
		"claim_types_supported":                                    []string{"normal"},
		"claims_supported":                                         claimsSupported,
		"claims_parameter_supported":                               false,
		"request_parameter_supported":                              false,
		"request_uri_parameter_supported":                          false,
		"prompt_values_supported":                                  []string{"none", "login", "consent"},
		"authorization_response_iss_parameter_supported":           true,
		"backchannel_logout_supported":                             true,
		"backchannel_logout_session_supported":                     true,
		"frontchannel_logout_supported":                            false,
		"pushed_authorization_request_endpoint":                    iss + "/oauth2/par",
		"require_pushed_authorization_requests":                    p.cfg.RequirePAR,
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_ = json.NewEncoder(w).Encode(doc)
}

// claimsSupported are the claims ID tokens and userinfo may carry.
var claimsSupported = []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr", "at_hash", "rat",
	"email", "email_verified", "name", "roles", "sid"}
