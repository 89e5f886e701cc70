// Package resource is the kit for services that accept authd access tokens
// and charge authd credits. It depends only on the standard library,
// go-jose v4 and golang.org/x/{sync,time}: nothing of authd's server.
//
// Verifying tokens. A Verifier checks RFC 9068 access tokens (typ at+jwt)
// offline: it reads the issuer's discovery document once, keeps the JWKS in
// memory, and checks the signature (asymmetric algorithms only, pinned by
// Config.Algorithms), iss, aud, exp, nbf and iat with Config.Leeway of clock
// skew, and the RFC 9068 claims sub, client_id and jti. A token signed with a
// kid it has not seen triggers one JWKS refresh, at most once per
// Config.RefreshMinInterval, so forged kids cannot turn it into a
// load generator against authd; a key rotation is picked up without restart.
// With Config.Introspection set, every offline-valid token is also checked
// with authd's introspection endpoint (RFC 7662), cached for a few seconds,
// so a revoked token or a removed role stops working almost at once.
//
//	v, err := resource.NewVerifier(resource.Config{Issuer: "https://auth.example.com", Audience: "urn:example:notes"})
//	mux.Handle("GET /notes", v.Require(resource.RequireScope("notes:read")(list)))
//
// Handlers read the verified claims with ClaimsFrom(r.Context()). Failures
// answer per RFC 6750: 401 with WWW-Authenticate: Bearer error="invalid_token"
// for a bad token, 403 with error="insufficient_scope" for a missing scope or
// role, 503 when the keys cannot be fetched at all.
//
// Charging credits. Credits calls authd's ledger API either as the user
// (AsUser: the user's own token with scope credits:spend) or as the service
// (ForUser: the service's client credentials with scope credits:charge).
// Spend is idempotent by reference, so it retries transport errors and 5xx
// answers on its own; the typed errors ErrInsufficientCredits and
// ErrReferenceConflict tell the caller what to show.
package resource
