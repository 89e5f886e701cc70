package oauth

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/ory/fosite"

	"github.com/authd/authd/storage"
)

// errUnavailable is what the OAuth endpoints answer while the database
// cannot serve them: 503 temporarily_unavailable. Without it fosite reports
// a failed client lookup as invalid_client (401, and the client-auth limiter
// counts it), a failed token lookup as an inactive token, and anything else
// as server_error: each blames the client or looks like a bug.
var errUnavailable = fosite.ErrTemporarilyUnavailable.WithHint("The service is temporarily unavailable; retry later.")

// asUnavailable returns a temporarily_unavailable error naming the outage
// and wrapping err when err is a database failure (storage.Classify), else
// err unchanged.
func asUnavailable(err error) (error, bool) {
	o, ok := storage.Classify(err)
	if !ok {
		return err, false
	}
	// The debug text is the cause for the log line (clients see it in
	// development only); database errors hold no secrets.
	return fosite.ErrTemporarilyUnavailable.WithHintf("The service is temporarily unavailable (%s); retry later.", o.Reason).
		WithWrap(err).WithDebug(err.Error()), true
}

// retryAfter is the Retry-After value, in seconds, for err (a database
// failure or not): 1 unless Classify knows better.
func retryAfter(err error) string {
	if o, ok := storage.Classify(err); ok {
		return strconv.Itoa(o.RetryAfterSeconds())
	}
	return "1"
}

// asOAuthError makes sure fosite renders err as a valid OAuth error: a
// database failure becomes temporarily_unavailable, any other error that
// is not already an RFC 6749 error becomes server_error (fosite would
// otherwise answer {"error":"error"} for it).
func asOAuthError(err error) error {
	if e, ok := asUnavailable(err); ok {
		return e
	}
	var rfc *fosite.RFC6749Error
	if !errors.As(err, &rfc) {
		return fosite.ErrServerError.WithWrap(err)
	}
	return err
}

// writeUnavailable answers 503 temporarily_unavailable as OAuth JSON for
// the database failure err, naming it and with its Retry-After, for the
// endpoints whose fosite writers have no 503 (introspection, revocation,
// userinfo).
func writeUnavailable(w http.ResponseWriter, err error) {
	desc := errUnavailable.GetDescription()
	if e, ok := asUnavailable(err); ok {
		var rfc *fosite.RFC6749Error
		if errors.As(e, &rfc) {
			desc = rfc.GetDescription()
		}
	}
	w.Header().Set("Retry-After", retryAfter(err))
	writeError(w, http.StatusServiceUnavailable, errUnavailable.ErrorField, desc)
}
