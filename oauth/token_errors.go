package oauth

import (
	"net/http"
	"slices"
	"strings"

	"github.com/ory/fosite"

	"github.com/authd/authd/oauth/clients"
)

// supportedGrants are the grant types the token endpoint implements, as
// composed in New, registered by clients and advertised by discovery.
var supportedGrants = clients.GrantTypes()

// checkGrantType decides unsupported_grant_type (RFC 6749 §5.2) from
// grant_type alone, before any client authentication or handler runs:
// fosite otherwise answers an unknown grant with a generic invalid_request.
// An absent grant_type is left to fosite (invalid_request, "missing").
// Grants the client is not registered for are unauthorized_client, decided
// by each fosite handler before it reads anything else.
func checkGrantType(grant string) error {
	if grant == "" || slices.Contains(supportedGrants, grant) {
		return nil
	}
	return fosite.ErrUnsupportedGrantType.WithHint("This server supports the grant types " + strings.Join(supportedGrants, ", ") + ".")
}

// basicChallenge adds `WWW-Authenticate: Basic realm="…"` to a 401 answered
// to a client that authenticated with HTTP Basic: RFC 6749 §5.2 requires a
// challenge matching the scheme the client used. Clients that sent their
// credentials otherwise get no challenge, as the RFC allows.
func basicChallenge(realm string, next http.Handler) http.Handler {
	challenge := `Basic realm="` + strings.ReplaceAll(realm, `"`, "") + `", charset="UTF-8"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, _, ok := r.BasicAuth(); !ok {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&challengeWriter{ResponseWriter: w, challenge: challenge}, r)
	})
}

type challengeWriter struct {
	http.ResponseWriter
	challenge string
	wrote     bool
}

func (w *challengeWriter) WriteHeader(code int) {
	if !w.wrote && code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", w.challenge)
	}
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *challengeWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *challengeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
