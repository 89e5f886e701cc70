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
// what is composed in New.
func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	iss := p.cfg.Issuer
	authMethods := []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"}
	doc := map[string]interface{}{
		"issuer":                                                   iss,
		"authorization_endpoint":                                   iss + "/oauth2/auth",
		"token_endpoint":                                           iss + "/oauth2/token",
		"introspection_endpoint":                                   iss + "/oauth2/introspect",
		"revocation_endpoint":                                      iss + "/oauth2/revoke",
		"userinfo_endpoint":                                        iss + "/userinfo",
		"end_session_endpoint":                                     iss + "/oauth2/logout",
		"jwks_uri":                                                 iss + "/.well-known/jwks.json",
		"scopes_supported":                                         Scopes,
		"response_types_supported":                                 []string{"code"},
		"response_modes_supported":                                 []string{"query"},
		"grant_types_supported":                                    []string{"authorization_code", "refresh_token", "client_credentials", "password", DeviceGrantType},
		"device_authorization_endpoint":                            iss + "/oauth2/device/auth",
		"code_challenge_methods_supported":                         []string{"S256"},
		"token_endpoint_auth_methods_supported":                    authMethods,
		"token_endpoint_auth_signing_alg_values_supported":         []string{"RS256", "ES256"},
		"introspection_endpoint_auth_methods_supported":            authMethods[:3],
		"revocation_endpoint_auth_methods_supported":               authMethods,
		"subject_types_supported":                                  []string{"public"},
		"id_token_signing_alg_values_supported":                    []string{"RS256", "ES256"},
		"userinfo_signing_alg_values_supported":                    []string{"none"},
		"claims_supported":                                         []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "at_hash", "email", "email_verified", "name", "roles"},
		"claims_parameter_supported":                               false,
		"request_parameter_supported":                              false,
		"request_uri_parameter_supported":                          false,
		"prompt_values_supported":                                  []string{"none", "login", "consent"},
		"authorization_response_iss_parameter_supported":           true,
		"backchannel_logout_supported":                             false,
		"frontchannel_logout_supported":                            false,
		"pushed_authorization_request_endpoint":                    iss + "/oauth2/par",
		"require_pushed_authorization_requests":                    p.cfg.RequirePAR,
		"tls_client_certificate_bound_access_tokens":               false,
		"introspection_endpoint_auth_signing_alg_values_supported": []string{"RS256", "ES256"},
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_ = json.NewEncoder(w).Encode(doc)
}
