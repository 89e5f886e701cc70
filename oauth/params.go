package oauth

import (
	"net/http"
)

// singleParams refuses a request that repeats a parameter, or sends one in
// both the query and the body. RFC 6749 §3.1/§3.2: "Request and response
// parameters MUST NOT be included more than once"; fosite reads the first
// copy and another component might read another, and credentials belong in
// the body only (§2.3.1), never in a URL that proxies log.
func singleParams(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		query := r.URL.Query()
		if err := r.ParseForm(); err != nil {
			paramError(w, "The request body could not be parsed as a form.")
			return
		}
		for k, v := range r.PostForm {
			if len(v) > 1 || query.Has(k) {
				paramError(w, "The parameter "+quoteParam(k)+" must be sent once, in the body only.")
				return
			}
		}
		for k, v := range query {
			if len(v) > 1 {
				paramError(w, "The parameter "+quoteParam(k)+" must be sent once.")
				return
			}
		}
		next(w, r)
	}
}

func paramError(w http.ResponseWriter, desc string) {
	writeError(w, http.StatusBadRequest, "invalid_request", desc)
}

// quoteParam names a parameter in an error without echoing hostile input.
func quoteParam(k string) string {
	if len(k) > 40 {
		return "(name too long)"
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return "(name with special characters)"
		}
	}
	return "'" + k + "'"
}
