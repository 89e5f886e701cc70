package main

import (
	"context"
	"net/http"
	"sync"

	"github.com/gorilla/mux"

	"github.com/authd/authd/internal/httpx"
	"github.com/authd/authd/internal/problem"
)

// app is the wired application: the HTTP handler and its background workers.
type app struct {
	handler http.Handler
	wg      sync.WaitGroup
	closers []func()
}

// goBackground runs fn until ctx ends; wait() waits for all of them.
func (a *app) goBackground(ctx context.Context, fn func(ctx context.Context)) {
	a.wg.Add(1)
	go func() { defer a.wg.Done(); fn(ctx) }()
}

func (a *app) wait() { a.wg.Wait() }

func (a *app) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
}

// maxBody bounds every request body (forms and JSON alike).
const maxBody = 1 << 20

// buildApp wires every module onto one router. ctx lives as long as the
// background workers should.
func buildApp(ctx context.Context, rt *runtime) (*app, error) {
	a := &app{}
	r := mux.NewRouter()
	r.Use(httpx.TagRoute)
	r.NotFoundHandler = http.HandlerFunc(notFound)
	r.MethodNotAllowedHandler = http.HandlerFunc(methodNotAllowed)
	r.HandleFunc("/healthz", httpx.Healthz).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/readyz", httpx.Readyz(rt.pool)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/metrics", httpx.MetricsHandler(rt.reg)).Methods(http.MethodGet)
	a.handler = httpx.Observe(rt.log, httpx.NewMetrics(rt.reg))(
		httpx.CORS(rt.cfg.CORSOrigins)(
			httpx.SecureHeaders(!rt.cfg.Dev())(
				httpx.LimitBody(maxBody)(r))))
	return a, nil
}

func notFound(w http.ResponseWriter, r *http.Request) { problem.Write(w, r, problem.ErrNotFound) }

func methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	problem.Write(w, r, problem.New(http.StatusMethodNotAllowed, "method_not_allowed", "this method is not allowed on this resource"))
}
