// Package openapi holds the OpenAPI 3.1 descriptions of authd's JSON APIs:
// the admin API (/admin/v1: users, roles, the audit log, OAuth clients,
// signing keys and the ledger's admin routes) and the public API (/api/v1:
// registration, reset, verification, the token's user and credits). The
// documents are written by hand beside the handlers they describe;
// cmd/authd's tests check each against the real router (every route
// documented, nothing documented that does not exist).
package openapi

import (
	_ "embed"
	"net/http"
)

//go:embed admin.json
var adminDoc []byte

//go:embed public.json
var publicDoc []byte

// Admin returns the admin API's OpenAPI document (JSON). The slice is a
// copy; callers may keep or change it.
func Admin() []byte { return append([]byte(nil), adminDoc...) }

// AdminHandler serves the document, for GET /admin/v1/openapi.json.
func AdminHandler() http.Handler { return serve(adminDoc) }

// Public returns the public API's OpenAPI document (JSON). The slice is a
// copy; callers may keep or change it.
func Public() []byte { return append([]byte(nil), publicDoc...) }

// PublicHandler serves the public document, for GET /api/v1/openapi.json
// (no authentication: it describes only what anyone may call or read).
func PublicHandler() http.Handler { return serve(publicDoc) }

func serve(doc []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(doc)
	})
}
