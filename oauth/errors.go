package oauth

import (
	"encoding/json"
	"net/http"
)

// writeError writes an OAuth error response (RFC 6749 §5.2, RFC 6750 §3):
// the one writer of the OAuth error JSON for the answers fosite's writers do
// not make (duplicate parameters, 503s, client-auth throttling, bearer
// refusals at /userinfo). Headers set before it (WWW-Authenticate,
// Retry-After) are kept.
func writeError(w http.ResponseWriter, status int, code, desc string) {
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}
