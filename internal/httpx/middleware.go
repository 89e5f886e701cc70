// Package httpx holds authd's HTTP plumbing: the middleware chain every
// request passes (request id, logging, metrics, panic recovery, security
// headers, CORS, body limits), health endpoints and graceful serving.
package httpx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/authd/authd/internal/clientip"
	"github.com/authd/authd/internal/problem"
	"github.com/authd/authd/internal/reqctx"
)

// Metrics are the per-request Prometheus series.
type Metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec

	// series caches the children of requests and latency by label values,
	// so a request pays one map lookup instead of two label hashings. It
	// stops growing at maxCachedSeries (methods come from clients).
	mu     sync.RWMutex
	series map[seriesKey]*series
}

type seriesKey struct {
	route, method string
	status        int
}

type series struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

const maxCachedSeries = 1024

// NewMetrics registers the HTTP metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authd_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "authd_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route", "method"}),
		series: map[seriesKey]*series{},
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

// observe counts one request and its latency.
func (m *Metrics) observe(route, method string, status int, d time.Duration) {
	k := seriesKey{route: route, method: method, status: status}
	m.mu.RLock()
	s := m.series[k]
	m.mu.RUnlock()
	if s == nil {
		s = &series{requests: m.requests.WithLabelValues(route, method, strconv.Itoa(status)),
			latency: m.latency.WithLabelValues(route, method)}
		m.mu.Lock()
		if len(m.series) < maxCachedSeries {
			m.series[k] = s
		}
		m.mu.Unlock()
	}
	s.requests.Inc()
	s.latency.Observe(d.Seconds())
}

// recorder sees the status and size of the response, and holds the matched
// route for TagRoute (one allocation for both).
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int
	route  routeHolder
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += n
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// routeHolder lets the router tell Observe, which wraps it, which route
// matched: requests are named by route template, never by raw path, so logs
// and metric labels hold no ids or tokens and stay low-cardinality.
type routeHolder struct{ route string }

type routeKey struct{}

// TagRoute is router middleware (mux.Router.Use) recording the matched
// route's template for Observe.
func TagRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := r.Context().Value(routeKey{}).(*routeHolder); ok {
			if rt := mux.CurrentRoute(r); rt != nil {
				if tpl, err := rt.GetPathTemplate(); err == nil {
					h.route = tpl
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// newRequestID returns 16 random hex characters.
func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validRequestID accepts a caller's X-Request-ID only if it is short and
// plain, so it cannot inject into logs.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// Observe is ObserveBehind trusting no proxy: the client is the TCP peer.
func Observe(log *zap.Logger, m *Metrics) func(http.Handler) http.Handler {
	return ObserveBehind(log, m, clientip.Resolver{})
}

// ObserveBehind is the outermost middleware: it assigns the request id
// (from X-Request-ID or fresh, echoed back), resolves the client address
// once with clients (every limiter and log reads it through clientip.Of),
// puts a request logger in the context, recovers panics as 500
// problem+json, and logs and measures the request. It logs the route
// template, never the query string, headers or body.
func ObserveBehind(log *zap.Logger, m *Metrics, clients clientip.Resolver) func(http.Handler) http.Handler {
	// The access line carries no stack (the handler that failed logged its
	// own) and no caller (it would always name this file).
	access := log.WithOptions(zap.AddStacktrace(zap.FatalLevel), zap.WithCaller(false))
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			id := r.Header.Get("X-Request-ID")
			if !validRequestID(id) {
				id = newRequestID()
			}
			w.Header()["X-Request-Id"] = []string{id} // canonical already
			// Built on first use only: most requests log nothing but
			// their access line.
			rl := log.WithLazy(zap.String("request_id", id))
			ip := clients.Addr(r)
			ua := r.UserAgent()
			if len(ua) > 512 {
				ua = ua[:512]
			}
			rec := &recorder{ResponseWriter: w, route: routeHolder{route: "unmatched"}}
			ctx := reqctx.WithRequest(r.Context(), id, rl, reqctx.Client{IP: ip, UserAgent: ua})
			r = r.WithContext(context.WithValue(ctx, routeKey{}, &rec.route))
			defer func() {
				if p := recover(); p != nil {
					if p == http.ErrAbortHandler {
						panic(p)
					}
					rl.Error("panic serving request", zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
					if rec.status == 0 {
						problem.Write(rec, r, errPanic)
					}
				}
				status := rec.status
				if status == 0 {
					status = http.StatusOK
				}
				d := time.Since(start)
				if m != nil {
					m.observe(rec.route.route, r.Method, status, d)
				}
				// A 503 is an outage of a dependency, not a bug.
				lvl := zap.InfoLevel
				switch {
				case status == http.StatusServiceUnavailable:
					lvl = zap.WarnLevel
				case status >= 500:
					lvl = zap.ErrorLevel
				}
				if ce := access.Check(lvl, "request"); ce != nil {
					ce.Write(zap.String("request_id", id), zap.String("method", r.Method), zap.String("route", rec.route.route),
						zap.Int("status", status), zap.Int("bytes", rec.bytes), zap.Duration("latency", d), zap.String("remote", ip))
				}
			}()
			next.ServeHTTP(rec, r)
		})
	}
}

type panicError struct{}

func (panicError) Error() string { return "panic in handler" }

var errPanic = panicError{}

// Deadline bounds every request's context by d, so no request waits on
// the database (or anything else honouring its context) longer than that;
// what trips it answers 503. Zero d adds no deadline.
func Deadline(d time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if d <= 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), d)
			defer cancel()
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// SecureHeaders sets headers every response should carry. Pages set their own
// CSP on top (loginui.PageHeaders).
func SecureHeaders(hsts bool) func(http.Handler) http.Handler {
	// Every response shares these value slices (cap 1: an Add reallocates,
	// a Set replaces), and the keys are already canonical: no allocation
	// or canonicalisation per request.
	type header struct {
		key string
		val []string
	}
	fixed := []header{
		{"X-Content-Type-Options", []string{"nosniff"}},
		{"Referrer-Policy", []string{"no-referrer"}},
		{"X-Frame-Options", []string{"DENY"}},
	}
	if hsts {
		fixed = append(fixed, header{"Strict-Transport-Security", []string{"max-age=31536000; includeSubDomains"}})
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			for _, f := range fixed {
				h[f.key] = f.val[:1:1]
			}
			next.ServeHTTP(w, r)
		})
	}
}

// LimitBody caps request bodies; handlers see an error past max bytes.
func LimitBody(max int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > max {
				problem.Write(w, r, wireErrors.Map(errBodyTooLarge))
				return
			}
			if r.Body != nil && r.Body != http.NoBody {
				r.Body = http.MaxBytesReader(w, r.Body, max)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// CORS answers preflights and sets CORS headers for the listed origins, on
// the JSON endpoints only (CORSPath): a hosted page is never readable
// cross-origin. Credentials are never allowed: the APIs take bearer tokens,
// never cookies, so a page elsewhere cannot ride a user's session.
func CORS(origins []string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			origin := r.Header.Get("Origin")
			if origin == "" || !slices.Contains(origins, origin) || !CORSPath(r.URL.Path) {
				next.ServeHTTP(w, r)
				return
			}
			h := w.Header()
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Expose-Headers", "X-Request-ID, WWW-Authenticate, Retry-After")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-ID")
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// CORSPath reports whether path is a JSON endpoint a browser app on another
// origin may call: authd's APIs, discovery and keys, and the OAuth endpoints
// a single-page app uses (token, revoke, introspect, userinfo). Hosted pages
// and the authorization endpoint are navigations, never fetched.
func CORSPath(path string) bool {
	for _, p := range []string{"/api/", "/admin/v1/", "/.well-known/"} {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	switch path {
	case "/oauth2/token", "/oauth2/revoke", "/oauth2/introspect", "/userinfo":
		return true
	}
	return false
}
