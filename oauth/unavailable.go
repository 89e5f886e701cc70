package oauth

import (
	"encoding/json"
	"net/http"

	"github.com/ory/fosite"

	"github.com/authd/authd/storage"
)

// errUnavailable is what the OAuth endpoints answer while the database is
// unreachable: 503 temporarily_unavailable. Without it fosite reports a
// failed client lookup as invalid_client (401, and the per-IP client-auth
// limiter counts it), a failed token lookup as an inactive token, and
// anything else as server_error: each blames the client or looks like a bug.
var errUnavailable = fosite.ErrTemporarilyUnavailable.WithHint("The service is temporarily unavailable; retry later.")

// asUnavailable returns errUnavailable wrapping err when err means the
// database could not be reached, else err unchanged.
func asUnavailable(err error) (error, bool) {
	if err != nil && storage.IsUnavailable(err) {
		return errUnavailable.WithWrap(err), true
	}
	return err, false
}

// writeUnavailable answers 503 temporarily_unavailable as OAuth JSON, for
// the endpoints whose fosite writers have no 503 (introspection, revocation,
// userinfo).
func writeUnavailable(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Retry-After", "1")
	w.WriteHeader(http.StatusServiceUnavailable)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": errUnavailable.ErrorField, "error_description": errUnavailable.GetDescription()})
}
