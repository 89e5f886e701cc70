// Package oauth is authd's OAuth 2.0 / OpenID Connect provider: ory/fosite
// composed explicitly (authorization code + PKCE, refresh with rotation and an
// idempotent reuse window, client credentials, OIDC, introspection,
// revocation, and the password grant for first-party clients only), its HTTP
// endpoints, the consent step of the authorization flow, discovery,
// userinfo, RP-initiated logout, and the access-token verifier authd's own
// JSON APIs use. The client registry is oauth/clients; the login pages are
// login-ui's. What it needs of accounts and the pages it declares in deps.go
// (Accounts, Pages).
//
// # Flow
//
// GET /oauth2/auth parses the request with fosite. Without a live browser
// session (or when prompt=login / max_age demand a fresh login) it redirects
// to /login?return_to=<this request>; login-ui authenticates and sends the
// browser back. With a session it asks for consent (rendered in place; the
// form posts to /consent, which re-parses the same request) unless the
// client is first party or the user already granted these scopes. Then it
// builds a Session carrying the subject, auth_time and the user's live roles,
// and fosite issues the code. authd writes every authorization answer itself
// (authorize_response.go): in the query or, with response_mode=form_post, as
// a form the browser posts, always with iss (RFC 9207). Errors that cannot
// be redirected (unknown client, unregistered redirect URI) get a hosted
// HTML page with the request id; request objects are refused.
//
// POST /oauth2/token decides unsupported_grant_type from grant_type alone
// (token_errors.go), challenges HTTP Basic clients on a 401, then runs
// fosite's token flow. Clients authenticate with exactly their registered
// method; private_key_jwt keys and their one alg are checked at
// registration (clients/keys.go). A refresh runs in one
// READ COMMITTED transaction holding a row lock on the presented token, so
// same-token retries within the reuse window get the identical stored
// response (see storage/fositestore). Roles come at every refresh and
// introspection from the accounts cache, which a change invalidates.
//
// Tokens: access tokens are RFC 9068 JWTs (ES256 by default); ID tokens are
// RS256 unless the client registered ES256. Every token carries the kid of
// the key that signed it; verification picks the key by kid among all
// published keys, so a rotation never breaks live tokens.
package oauth
