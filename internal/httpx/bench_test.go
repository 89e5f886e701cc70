package httpx_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/authd/authd/internal/httpx"
	"github.com/authd/authd/internal/logging"
)

// discardWriter is a ResponseWriter that keeps only the header map, so the
// benchmark measures the middleware, not a recorder.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// BenchmarkChain is one GET through authd's whole per-request chain, in
// app.go's order (Observe, CORS, SecureHeaders, LimitBody, the router with
// TagRoute), to a handler shaped like JWKS, with JSON access lines going to
// a file through the production logger. It is the fixed cost every request pays.
func BenchmarkChain(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "log.json"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	// The production logger writes to stderr (buffered): point stderr at
	// the file while it is built.
	stderr := os.Stderr
	os.Stderr = f
	log, err := logging.New(logging.Options{Format: "json", Level: "info"})
	os.Stderr = stderr
	if err != nil {
		b.Fatal(err)
	}
	defer log.Sync()
	body := []byte(`{"keys":[]}`)
	r := mux.NewRouter()
	r.Use(httpx.TagRoute)
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/oauth2/token", "/oauth2/introspect", "/oauth2/revoke", "/oauth2/auth"} {
		r.HandleFunc(p, func(http.ResponseWriter, *http.Request) {})
	}
	r.HandleFunc("/.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "public, max-age=900")
		h.Set("ETag", `"abc"`)
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	}).Methods(http.MethodGet)
	chain := httpx.Observe(log, httpx.NewMetrics(prometheus.NewRegistry()))(
		httpx.CORS([]string{"https://app.example.com"})(
			httpx.SecureHeaders(true)(
				httpx.LimitBody(1 << 20)(r))))
	req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1/.well-known/jwks.json", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Set("User-Agent", "authd-bench")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		chain.ServeHTTP(w, req)
	}
}
