package oauth

import (
	"net/http"
	"net/url"

	"github.com/authd/authd/internal/ratelimit"
)

// limitClientAuth bounds client-secret guessing (RFC 9700 §2.5) without
// letting anyone lock others out. Failures (a 401 from next: invalid_client
// at the token and revocation endpoints, an unauthenticated caller at
// introspection) are counted per (client address, client_id), so one
// attacker's failures touch neither other addresses nor other clients at
// the same address. The decision is taken when next answers: a request
// whose client authentication succeeds passes even from an exhausted key;
// a failing one from an exhausted key gets 429 with Retry-After instead of
// its 401.
func (p *Provider) limitClientAuth(next http.HandlerFunc) http.Handler {
	lim := p.cfg.ClientAuthFailureLimit
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next(&clientAuthWriter{ResponseWriter: w, r: r, lim: lim}, r)
	})
}

// clientAuthKey is the failure-limit key of r: its client address and the
// client_id it claims (HTTP Basic, else the form next has parsed by the
// time it answers).
func clientAuthKey(r *http.Request) string {
	id, _, ok := r.BasicAuth()
	if ok {
		if u, err := url.QueryUnescape(id); err == nil {
			id = u
		}
	} else {
		id = r.PostForm.Get("client_id")
	}
	if len(id) > 256 {
		id = id[:256]
	}
	return ratelimit.ClientIP(r) + " " + id
}

// clientAuthWriter applies the failure limit at the moment next writes its
// status.
type clientAuthWriter struct {
	http.ResponseWriter
	r       *http.Request
	lim     *ratelimit.Limiter
	decided bool
	refused bool
}

func (w *clientAuthWriter) WriteHeader(code int) {
	if w.decided {
		if !w.refused {
			w.ResponseWriter.WriteHeader(code)
		}
		return
	}
	w.decided = true
	if code != http.StatusUnauthorized {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	key := clientAuthKey(w.r)
	if blocked, wait := w.lim.Blocked(key); blocked {
		w.refused = true
		h := w.Header()
		h.Del("WWW-Authenticate")
		h.Set("Retry-After", ratelimit.RetryAfter(wait))
		writeError(w.ResponseWriter, http.StatusTooManyRequests, "invalid_client",
			"Too many failed client authentications for this client from this address; retry after "+ratelimit.RetryAfter(wait)+" seconds.")
		return
	}
	w.lim.Allow(key)
	w.ResponseWriter.WriteHeader(code)
}

func (w *clientAuthWriter) Write(b []byte) (int, error) {
	if !w.decided {
		w.WriteHeader(http.StatusOK)
	}
	if w.refused {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

func (w *clientAuthWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
