// Package authdtest runs the real authd binary for tests, as an operator
// would: `go build ./cmd/authd` once per test process, then `authd serve` on a
// loopback port against a test database, plus the CLI with the same
// environment. Named like net/http/httptest.
package authdtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// SecretsKey is the fixed AUTHD_SECRETS_KEY of test servers.
const SecretsKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// The binary is built once per test process; building is the slow part.
var build struct {
	once sync.Once
	bin  string
	err  error
}

// Binary returns the path of a freshly built authd, building it on first use.
func Binary(tb testing.TB) string {
	tb.Helper()
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "authd-bin-")
		if err != nil {
			build.err = err
			return
		}
		build.bin = filepath.Join(dir, "authd")
		out, err := exec.Command("go", "build", "-o", build.bin, "github.com/authd/authd/cmd/authd").CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build ./cmd/authd: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		tb.Fatal(build.err)
	}
	return build.bin
}

// Proc is a running `authd serve`.
type Proc struct {
	URL string   // http://127.0.0.1:port, also the issuer
	Bin string   // the binary, for CLI calls
	Env []string // the environment it runs with
	tb  testing.TB
}

// Start runs `authd serve` against databaseURL with extra AUTHD_* settings
// (KEY=VALUE) and waits for /readyz. It is stopped with SIGTERM when tb ends;
// its log is printed if tb failed.
func Start(tb testing.TB, databaseURL string, extra ...string) *Proc {
	tb.Helper()
	bin := Binary(tb)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := &Proc{URL: "http://" + addr, Bin: bin, tb: tb}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AUTHD_") {
			p.Env = append(p.Env, kv)
		}
	}
	p.Env = append(p.Env, "AUTHD_ENV=development", "AUTHD_DATABASE_URL="+databaseURL, "AUTHD_ISSUER="+p.URL,
		"AUTHD_LISTEN="+addr, "AUTHD_SECRETS_KEY="+SecretsKey, "AUTHD_BCRYPT_COST=4", "AUTHD_LOG_FORMAT=json")
	p.Env = append(p.Env, extra...)
	logf, err := os.CreateTemp("", "authd-log-")
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "serve")
	cmd.Env, cmd.Stdout, cmd.Stderr = p.Env, logf, logf
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-exited
		logf.Close()
		if tb.Failed() {
			b, _ := os.ReadFile(logf.Name())
			tb.Logf("authd log:\n%s", b)
		}
		os.Remove(logf.Name())
	})
	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if resp, err := http.Get(p.URL + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logf.Name())
			tb.Fatalf("authd exited before ready: %v\n%s", err, b)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			tb.Fatal("authd not ready within 60s")
		}
	}
}

// CLI runs `authd args... --output json` with stdin and decodes its output.
func (p *Proc) CLI(stdin string, args ...string) map[string]any {
	p.tb.Helper()
	cmd := exec.Command(p.Bin, append(args, "--output", "json")...)
	cmd.Env, cmd.Stdin = p.Env, strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		p.tb.Fatalf("authd %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	out := map[string]any{}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		p.tb.Fatalf("authd %s: output %q: %v", strings.Join(args, " "), stdout.String(), err)
	}
	return out
}

// Token gets an access token from the token endpoint with client_secret_basic.
func (p *Proc) Token(clientID, secret string, form url.Values) string {
	p.tb.Helper()
	req, _ := http.NewRequest(http.MethodPost, p.URL+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.tb.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	tok, _ := out["access_token"].(string)
	if resp.StatusCode != http.StatusOK || tok == "" {
		p.tb.Fatalf("token: %d %v", resp.StatusCode, out)
	}
	return tok
}
