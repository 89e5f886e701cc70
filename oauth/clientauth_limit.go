package oauth

import (
	"encoding/json"
	"net/http"

	"github.com/authd/authd/internal/ratelimit"
)

// limitClientAuth bounds client-secret guessing (RFC 9700 §2.5): every 401
// from next (a failed client authentication: invalid_client at the token and
// revocation endpoints, an unauthenticated caller at introspection) takes a
// token from the client IP's bucket, and an address with none left is
// refused before its credentials are even checked. Successful requests cost
// nothing, so a busy legitimate client is never slowed.
func (p *Provider) limitClientAuth(next http.HandlerFunc) http.Handler {
	lim := p.cfg.ClientAuthFailureLimit
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := clientIP(r)
		if blocked, wait := lim.Blocked(ip); blocked {
			w.Header().Set("Retry-After", ratelimit.RetryAfter(wait))
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Content-Type", "application/json;charset=UTF-8")
			w.WriteHeader(http.StatusTooManyRequests)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client",
				"error_description": "Too many failed client authentications from this address; retry after " + ratelimit.RetryAfter(wait) + " seconds."})
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		next(sw, r)
		if sw.status == http.StatusUnauthorized {
			lim.Allow(ip)
		}
	})
}

// statusWriter remembers the status code written through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
