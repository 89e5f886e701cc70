package reliability

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
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Build compiles ./cmd/authd (module github.com/authd/authd) into dir and
// returns the binary's path. The go command is the one running the tests,
// else the first on PATH.
func Build(ctx context.Context, dir string) (string, error) {
	goBin := filepath.Join(goruntime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		if goBin, err = exec.LookPath("go"); err != nil {
			return "", errors.New("reliability: no go command to build authd with")
		}
	}
	bin := filepath.Join(dir, "authd")
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, "github.com/authd/authd/cmd/authd")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("reliability: go build ./cmd/authd: %w\n%s", err, out)
	}
	return bin, nil
}

// NewSecretsKey returns a fresh AUTHD_SECRETS_KEY.
func NewSecretsKey() string {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return base64.StdEncoding.EncodeToString(k)
}

// Env is what every scenario runs with.
type Env struct {
	Bin         string // the authd binary (Build)
	DatabaseURL string // a migrated database of the scenario's own
	Dir         string // scratch directory: server logs, working directory
	// Logf reports progress (t.Logf in tests, stderr in the soak).
	Logf func(format string, args ...any)
}

// ServerConfig starts one `authd serve`.
type ServerConfig struct {
	Name   string // for log file names and reports ("A", "B", …)
	Addr   string // 127.0.0.1:port; "" picks a free port
	Issuer string // "" = http://<Addr>; replicas share one
	Key    string // AUTHD_SECRETS_KEY; replicas share one
	Extra  []string
}

// Server is a running `authd serve` process.
type Server struct {
	Name, Addr, URL string
	cfg             ServerConfig
	env             Env
	cmd             *exec.Cmd
	logPath         string
	lines           *lineCounter
	exited          chan struct{}
	exitErr         error
}

// baseEnv is the process environment without any AUTHD_* variable of ours.
func baseEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AUTHD_") {
			out = append(out, kv)
		}
	}
	return out
}

func (e Env) authdEnv(key string) []string {
	return append(baseEnv(),
		"AUTHD_ENV=production", "AUTHD_LOG_FORMAT=json", "AUTHD_LOG_LEVEL=info",
		"AUTHD_DATABASE_URL="+e.DatabaseURL, "AUTHD_SECRETS_KEY="+key, "AUTHD_BCRYPT_COST=4")
}

// StartServer starts authd and waits until /readyz answers 200.
func StartServer(ctx context.Context, env Env, cfg ServerConfig) (*Server, error) {
	if cfg.Addr == "" {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		cfg.Addr = "127.0.0.1:" + strconv.Itoa(p)
	}
	if cfg.Issuer == "" {
		cfg.Issuer = "http://" + cfg.Addr
	}
	if cfg.Name == "" {
		cfg.Name = cfg.Addr
	}
	s := &Server{Name: cfg.Name, Addr: cfg.Addr, URL: "http://" + cfg.Addr, cfg: cfg, env: env}
	return s, s.start(ctx)
}

func (s *Server) start(ctx context.Context) error {
	s.logPath = filepath.Join(s.env.Dir, fmt.Sprintf("authd-%s-%d.log", strings.ReplaceAll(s.Name, ":", "_"), time.Now().UnixNano()))
	f, err := os.Create(s.logPath)
	if err != nil {
		return err
	}
	if s.lines == nil {
		s.lines = &lineCounter{}
	}
	s.lines.w = f
	cmd := exec.Command(s.env.Bin, "serve")
	cmd.Dir = s.env.Dir // no stray .env is read
	cmd.Env = append(s.env.authdEnv(s.cfg.Key), "AUTHD_LISTEN="+s.Addr, "AUTHD_ISSUER="+s.cfg.Issuer)
	cmd.Env = append(cmd.Env, s.cfg.Extra...)
	cmd.Stdout = s.lines
	cmd.Stderr = s.lines
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("reliability: start authd %s: %w", s.Name, err)
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	go func() {
		s.exitErr = cmd.Wait()
		f.Close()
		close(s.exited)
	}()
	return s.waitReady(ctx, 30*time.Second)
}

func (s *Server) waitReady(ctx context.Context, timeout time.Duration) error {
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("reliability: authd %s exited during start-up: %v\n%s", s.Name, s.exitErr, s.LogTail(3000))
		default:
		}
		resp, err := c.Get(s.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.Kill()
			return fmt.Errorf("reliability: authd %s not ready after %s (last: %v)\n%s", s.Name, timeout, err, s.LogTail(3000))
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
}

// Restart starts the server again on the same address (after Kill or Term).
func (s *Server) Restart(ctx context.Context) error {
	if s.Running() {
		return fmt.Errorf("reliability: authd %s still running", s.Name)
	}
	return s.start(ctx)
}

// Running reports whether the process has not exited.
func (s *Server) Running() bool {
	if s.exited == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (s *Server) Kill() {
	if !s.Running() {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
}

// Term sends SIGTERM and waits up to timeout for a clean exit. It returns
// the exit error (nil for status 0) or an error on timeout (then kills).
func (s *Server) Term(timeout time.Duration) error {
	if !s.Running() {
		return s.exitErr
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return s.exitErr
	case <-time.After(timeout):
		s.Kill()
		return fmt.Errorf("reliability: authd %s still running %s after SIGTERM", s.Name, timeout)
	}
}

// LogLines is how many JSON log lines the process has written to stderr, the
// same entries its Logstash sink was offered.
func (s *Server) LogLines() int64 { return s.lines.n.Load() }

// Log returns the whole log output.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

// LogTail returns the last n bytes of the log.
func (s *Server) LogTail(n int) string {
	b := s.Log()
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return b
}

// lineCounter passes output through to w and counts JSON lines.
type lineCounter struct {
	mu      sync.Mutex
	w       io.Writer
	partial bool // the previous write ended mid-line
	start   bool // the current line started with '{'
	n       atomic.Int64
}

func (l *lineCounter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rest := p
	for len(rest) > 0 {
		if !l.partial {
			l.start = rest[0] == '{'
		}
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			l.partial = true
			break
		}
		if l.start {
			l.n.Add(1)
		}
		l.partial = false
		rest = rest[i+1:]
	}
	return l.w.Write(p)
}

// CLI runs `authd args…` against env's database with key, stdin as given.
func (e Env) CLI(ctx context.Context, key, stdin string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, e.Bin, args...)
	cmd.Dir = e.Dir
	cmd.Env = e.authdEnv(key)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("authd %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// FreePort returns a currently free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
