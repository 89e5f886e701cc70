package keys

import (
	"net/http"
	"strconv"
	"strings"
)

// ServeJWKS serves JWKS() at /.well-known/jwks.json: cacheable by anyone for
// JWKSMaxAge (Prepublish is at least that long, so a cached set always holds
// the key that signs next), with an ETag and 304 for a matching If-None-Match.
func (m *Manager) ServeJWKS(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, etag := m.JWKS()
	h := w.Header()
	h.Set("Cache-Control", m.cacheControl)
	h.Set("ETag", etag)
	if etagMatches(r.Header.Values("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	// RFC 7517 registers application/jwk-set+json, but OIDC clients and
	// discovery documents in the wild expect plain JSON.
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}

// etagMatches implements If-None-Match's weak comparison (RFC 9110 §13.1.2)
// against our strong etag.
func etagMatches(headers []string, etag string) bool {
	for _, h := range headers {
		for _, tag := range strings.Split(h, ",") {
			tag = strings.TrimSpace(tag)
			if tag == "*" || strings.TrimPrefix(tag, "W/") == etag {
				return true
			}
		}
	}
	return false
}
