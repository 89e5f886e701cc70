package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/authd/authd/storage"
)

// world is the authd under test: its URL, its process and its database.
type world struct {
	URL      string
	authdPID int    // 0 when targeting -url without -authd-pid
	pgData   string // Postgres data dir; "" when unknown
	dbURL    string // "" when targeting -url
	env      []string
	bin      string
	logPath  string
	startup  time.Duration // exec to first /readyz 200
	pprofURL string        // authd's AUTHD_PPROF_LISTEN, "" when off
	label    string        // "empty" or "prod", in profile file names
	// statements: pg_stat_statements is loaded (-cpuprofile-dir) and
	// dropped again when the world stops.
	statements bool
	cmd        *exec.Cmd
	cluster    *storage.Cluster
	tmp        string
	exited     chan error
	// loadedUsers is how many users a production-size world was loaded
	// with (scale.go's userID(1..n)); 0 for an empty world.
	loadedUsers int
}

// worldConfig is what startWorld needs.
type worldConfig struct {
	// DataDir is an existing Postgres data directory to run on (a cached
	// production-size world; kept when the world stops); "" for a fresh
	// empty one.
	DataDir    string
	BcryptCost int
	AuthdBin   string   // prebuilt authd; built from ./cmd/authd when empty
	MaxConns   int      // AUTHD_DB_MAX_CONNS; 0 = authd's default
	ExtraEnv   []string // more settings for authd (the soak's short TTLs)
	Pprof      bool     // serve authd's profiles on a loopback port, load pg_stat_statements (-cpuprofile-dir)
	PG         pgTuning // the Postgres settings (pgtuning.go)
	Log        io.Writer
}

// startWorld starts a durable private PostgreSQL, migrates it, builds authd
// and runs `authd serve` against it.
func startWorld(ctx context.Context, cfg worldConfig) (*world, error) {
	tmp, err := os.MkdirTemp("", "authd-bench-")
	if err != nil {
		return nil, err
	}
	// Traversable by the unprivileged user PostgreSQL runs as under root.
	if err := os.Chmod(tmp, 0o711); err != nil {
		return nil, err
	}
	w := &world{tmp: tmp, exited: make(chan error, 1)}
	ok := false
	defer func() {
		if !ok {
			w.stop()
		}
	}()
	fmt.Fprintf(cfg.Log, "starting private PostgreSQL (durable: fsync and synchronous_commit on; %s) …\n", cfg.PG)
	w.cluster = &storage.Cluster{Dir: filepath.Join(tmp, "pg"), Durable: true}
	if cfg.DataDir != "" {
		w.cluster.Dir = cfg.DataDir
	}
	w.cluster.Settings = append([]string(nil), cfg.PG.Settings...)
	if cfg.Pprof {
		w.cluster.Settings = append(w.cluster.Settings, pgStatementsSettings...)
	}
	if err := w.cluster.Start(ctx); err != nil {
		return nil, err
	}
	w.pgData = w.cluster.Dir
	w.dbURL = w.cluster.URL("authd")
	if err := storage.Migrate(w.dbURL); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	if cfg.Pprof {
		// Dropped again by stop: a cached world is left as it was.
		if err := execAll(ctx, w.dbURL, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"); err != nil {
			return nil, err
		}
		w.statements = true
	}
	w.bin = cfg.AuthdBin
	if w.bin == "" {
		fmt.Fprintln(cfg.Log, "building ./cmd/authd …")
		w.bin = filepath.Join(tmp, "authd")
		if err := buildAuthd(ctx, w.bin); err != nil {
			return nil, err
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	w.URL = "http://127.0.0.1:" + strconv.Itoa(port)
	key, fresh, err := secretsKey(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if fresh && cfg.DataDir != "" {
		// Keys a run before this one sealed under a key nobody kept
		// cannot be opened: authd creates new ones.
		if err := execAll(ctx, w.dbURL, "DELETE FROM signing_keys"); err != nil {
			return nil, err
		}
	}
	w.env = append(os.Environ(),
		"AUTHD_ENV=production",
		"AUTHD_ISSUER="+w.URL,
		"AUTHD_LISTEN=127.0.0.1:"+strconv.Itoa(port),
		"AUTHD_DATABASE_URL="+w.dbURL,
		"AUTHD_SECRETS_KEY="+base64.StdEncoding.EncodeToString(key),
		"AUTHD_LOG_FORMAT=json",
		"AUTHD_LOG_LEVEL=info",
		"AUTHD_BCRYPT_COST="+strconv.Itoa(cfg.BcryptCost),
	)
	if cfg.MaxConns > 0 {
		w.env = append(w.env, "AUTHD_DB_MAX_CONNS="+strconv.Itoa(cfg.MaxConns))
	}
	if cfg.Pprof {
		pport, err := freePort()
		if err != nil {
			return nil, err
		}
		addr := "127.0.0.1:" + strconv.Itoa(pport)
		w.pprofURL = "http://" + addr
		w.env = append(w.env, "AUTHD_PPROF_LISTEN="+addr)
	}
	w.env = append(w.env, cfg.ExtraEnv...)
	w.logPath = filepath.Join(tmp, "authd.log")
	logf, err := os.Create(w.logPath)
	if err != nil {
		return nil, err
	}
	// The key manager creates the first signing keys at start-up; let that
	// happen before timing start-up, as on any but the very first boot.
	if err := w.startAuthd(ctx, logf); err != nil {
		return nil, err
	}
	w.stopAuthd()
	if err := w.startAuthd(ctx, logf); err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Log, "authd serve on %s (pid %d, logs %s), ready %s after exec\n", w.URL, w.authdPID, w.logPath, w.startup.Round(time.Millisecond))
	ok = true
	return w, nil
}

// buildAuthd builds ./cmd/authd into out as `make build` and the
// Dockerfile build what ships: static (no cgo, so no libc and no cgo DNS
// resolver), trimmed, stripped.
func buildAuthd(ctx context.Context, out string) error {
	build := exec.CommandContext(ctx, goTool(), "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./cmd/authd")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	var err error
	if build.Dir, err = moduleRoot(ctx); err != nil {
		return err
	}
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("CGO_ENABLED=0 go build ./cmd/authd: %w\n%s", err, out)
	}
	return nil
}

// startAuthd runs `authd serve` and waits for /readyz.
func (w *world) startAuthd(ctx context.Context, logf *os.File) error {
	cmd := exec.Command(w.bin, "serve")
	cmd.Env = w.env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start authd: %w", err)
	}
	w.cmd, w.authdPID = cmd, cmd.Process.Pid
	exited := make(chan error, 1)
	w.exited = exited
	go func() { exited <- cmd.Wait() }()
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	// Polling is the measurement here: how soon after exec the server is ready.
	for {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("authd exited during start-up (%v); its log:\n%s", err, tailFile(w.logPath, 3000))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if resp, err := c.Get(w.URL + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				w.startup = time.Since(t0)
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("authd not ready after 30s; its log:\n%s", tailFile(w.logPath, 3000))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (w *world) stopAuthd() {
	if w.cmd == nil {
		return
	}
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.exited:
	case <-time.After(30 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.exited
	}
	w.cmd = nil
}

// alive reports an error once authd has exited.
func (w *world) alive() error {
	if w.cmd == nil {
		return nil
	}
	select {
	case err := <-w.exited:
		w.exited <- err
		return fmt.Errorf("authd exited (%v); its log:\n%s", err, tailFile(w.logPath, 3000))
	default:
		return nil
	}
}

func (w *world) stop() {
	w.stopAuthd()
	if w.statements {
		_ = execAll(context.Background(), w.dbURL, "DROP EXTENSION IF EXISTS pg_stat_statements")
	}
	if w.cluster != nil {
		_ = w.cluster.Stop(context.Background())
	}
	if w.tmp != "" {
		_ = os.RemoveAll(w.tmp)
	}
}

// cli runs an authd CLI command against the world's database and returns
// its stdout.
func (w *world) cli(ctx context.Context, stdin string, args ...string) ([]byte, error) {
	if w.bin == "" {
		return nil, errors.New("the authd CLI needs the bench's own world (not -url)")
	}
	cmd := exec.CommandContext(ctx, w.bin, args...)
	cmd.Env = w.env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("authd %s: %w: %s", strings.Join(args[:min(2, len(args))], " "), err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, goTool(), "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run authd-bench inside the authd module (make bench), or pass -authd-bin")
	}
	return filepath.Dir(mod), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tailFile(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func itoa(i int) string { return strconv.Itoa(i) }

// secretsKey is the AUTHD_SECRETS_KEY of a world: random for a fresh empty
// one; for a cached production-size world (dataDir set) the one kept beside
// its data directory, created on its first run (fresh), since the signing
// keys authd creates on that run are sealed under it and every later run
// must open them, as a production deployment keeps its key.
func secretsKey(dataDir string) (key []byte, fresh bool, err error) {
	key = make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, false, err
	}
	if dataDir == "" {
		return key, true, nil
	}
	path := filepath.Join(filepath.Dir(dataDir), "secrets-key")
	if b, err := os.ReadFile(path); err == nil {
		k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(k) != 32 {
			return nil, false, fmt.Errorf("%s: not a base64 32-byte key", path)
		}
		return k, false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, false, err
	}
	return key, true, nil
}
