package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/authd/authd/internal/config"
	"github.com/authd/authd/internal/httpx"
	"github.com/authd/authd/internal/logging"
	"github.com/authd/authd/storage"
)

func (c *cli) serveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the production server",
		Long:  "Run the server. Outside development it requires AUTHD_DATABASE_URL, AUTHD_ISSUER and AUTHD_SECRETS_KEY.\n\nEnvironment variables (also read from ./.env):\n" + envHelp(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig()
			if err != nil {
				return err
			}
			if err := cfg.RequireProduction(); err != nil {
				return err
			}
			if cfg.DatabaseURL == "" {
				return errors.New("AUTHD_DATABASE_URL: required by `authd serve` (use `authd dev` for a private database)")
			}
			if cfg.SecretsKey == "" {
				return errors.New("AUTHD_SECRETS_KEY: required by `authd serve` (generate one with: openssl rand -base64 32)")
			}
			return c.run(cmd.Context(), cfg, nil)
		},
	}
	return cmd
}

func envHelp() string {
	s := ""
	for _, v := range config.Vars() {
		def := v.Default
		if def != "" {
			def = " (default " + def + ")"
		}
		s += fmt.Sprintf("  %-28s %s%s\n", v.Name, v.Doc, def)
	}
	return s
}

// runtime is what a running server is made of; the dev command adds to it.
type runtime struct {
	cfg      *config.Config
	log      *zap.Logger
	pool     *pgxpool.Pool
	reg      *prometheus.Registry
	logstash *logging.LogstashSink
	dev      *devExtras // nil outside `authd dev`
	// ready is closed once the server listens (tests wait on it).
	ready    chan struct{}
	listener net.Listener
}

// newLogger builds the process logger and the Logstash sink if configured.
func newLogger(cfg *config.Config) (*zap.Logger, *logging.LogstashSink, error) {
	var sink *logging.LogstashSink
	if cfg.Logstash != "" {
		sink = logging.NewLogstashSink(cfg.Logstash, 0)
	}
	log, err := logging.New(logging.Options{Format: cfg.LogFormat, Level: cfg.LogLevel, Service: "authd", Env: cfg.Env, Logstash: sink})
	return log, sink, err
}

// run serves until ctx ends. pre, when not nil, is called with the runtime
// before serving (dev bootstrap).
func (c *cli) run(ctx context.Context, cfg *config.Config, dev *devExtras) error {
	start := time.Now()
	log, sink, err := newLogger(cfg)
	if err != nil {
		return err
	}
	defer func() {
		_ = log.Sync()
		if sink != nil {
			sink.Close()
		}
	}()
	pool, err := storage.Open(ctx, cfg.DatabaseURL, storage.PoolConfig{MaxConns: cfg.DBMaxConns,
		StatementTimeout: cfg.DBStatementTimeout, LockTimeout: cfg.DBLockTimeout, AcquireTimeout: cfg.DBAcquireTimeout})
	if err != nil {
		return fmt.Errorf("AUTHD_DATABASE_URL: %w", err)
	}
	defer pool.Close()
	rt := &runtime{cfg: cfg, log: log, pool: pool, reg: prometheus.NewRegistry(), logstash: sink, dev: dev, ready: make(chan struct{})}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("AUTHD_LISTEN: %w", err)
	}
	rt.listener = ln
	return serveRuntime(ctx, rt, start)
}

// serveRuntime builds the application on rt and serves it on rt.listener.
func serveRuntime(ctx context.Context, rt *runtime, start time.Time) error {
	rt.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), httpx.PoolCollector(rt.pool))
	if rt.logstash != nil {
		sink := rt.logstash
		rt.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "authd_log_lines_dropped_total", Help: "Log lines the Logstash sink could not deliver.",
		}, func() float64 { return float64(sink.Dropped()) }))
	}
	bg, cancelBG := context.WithCancel(context.WithoutCancel(ctx))
	a, err := buildApp(bg, rt)
	if err != nil {
		cancelBG()
		return err
	}
	defer a.close()
	metricsDone, err := serveMetrics(ctx, rt)
	if err != nil {
		cancelBG()
		a.wait()
		return err
	}
	defer func() { <-metricsDone }()
	pprofDone, err := servePprof(ctx, rt)
	if err != nil {
		cancelBG()
		a.wait()
		return err
	}
	defer func() { <-pprofDone }()
	srv := httpx.NewServer(a.handler, rt.log)
	rt.log.Info("authd listening",
		zap.String("addr", rt.listener.Addr().String()), zap.String("issuer", rt.cfg.Issuer),
		zap.String("env", rt.cfg.Env), zap.Duration("startup", time.Since(start)))
	close(rt.ready)
	err = httpx.Serve(ctx, srv, rt.listener, 25*time.Second)
	// Background workers stop only after in-flight requests have finished.
	cancelBG()
	a.wait()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	rt.log.Info("authd stopped")
	return nil
}

// serveMetrics serves /metrics on AUTHD_METRICS_LISTEN until ctx ends, so
// production can keep it off the public listener. The returned channel is
// closed once that server has stopped (at once when there is none).
func serveMetrics(ctx context.Context, rt *runtime) (<-chan struct{}, error) {
	done := make(chan struct{})
	if rt.cfg.MetricsListen == "" {
		close(done)
		return done, nil
	}
	ln, err := net.Listen("tcp", rt.cfg.MetricsListen)
	if err != nil {
		close(done)
		return done, fmt.Errorf("AUTHD_METRICS_LISTEN: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", httpx.MetricsHandler(rt.reg))
	srv := httpx.NewServer(mux, rt.log)
	rt.log.Info("metrics listening", zap.String("addr", ln.Addr().String()))
	go func() {
		defer close(done)
		if err := httpx.Serve(ctx, srv, ln, 5*time.Second); err != nil && !errors.Is(err, http.ErrServerClosed) {
			rt.log.Error("metrics listener", zap.Error(err))
		}
	}()
	return done, nil
}

// servePprof serves Go's profiles under /debug/pprof/ on AUTHD_PPROF_LISTEN
// (a loopback address, checked by config) until ctx ends; off when unset.
// The bench profiles the server through it. The returned channel is closed
// once that server has stopped (at once when there is none).
func servePprof(ctx context.Context, rt *runtime) (<-chan struct{}, error) {
	done := make(chan struct{})
	if rt.cfg.PprofListen == "" {
		close(done)
		return done, nil
	}
	ln, err := net.Listen("tcp", rt.cfg.PprofListen)
	if err != nil {
		close(done)
		return done, fmt.Errorf("AUTHD_PPROF_LISTEN: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	srv := httpx.NewServer(mux, rt.log)
	// A CPU profile or trace answers after its ?seconds=, longer than the
	// public listener's write timeout allows.
	srv.WriteTimeout = 0
	rt.log.Warn("pprof listening: profiles of this process are served to local callers", zap.String("addr", ln.Addr().String()))
	go func() {
		defer close(done)
		if err := httpx.Serve(ctx, srv, ln, time.Second); err != nil && !errors.Is(err, http.ErrServerClosed) {
			rt.log.Error("pprof listener", zap.Error(err))
		}
	}()
	return done, nil
}
