// Package openapi holds the OpenAPI 3.1 description of authd's admin API
// (/admin/v1): users, roles, the audit log, OAuth clients, signing keys and
// the ledger's admin routes. The document is written by hand beside the
// handlers it describes; cmd/authd's tests check it against the real router
// (every route documented, nothing documented that does not exist).
package openapi

import (
	_ "embed"
	"net/http"
)

//go:embed admin.json
var adminDoc []byte

// Admin returns the admin API's OpenAPI document (JSON). The slice is a
// copy; callers may keep or change it.
func Admin() []byte { return append([]byte(nil), adminDoc...) }

// AdminHandler serves the document, for GET /admin/v1/openapi.json.
func AdminHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(adminDoc)
	})
}
