package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authd/authd/storage/storagetest"
)

func TestMain(m *testing.M) { os.Exit(storagetest.Main(m)) }

// authdProc is the real authd binary serving on a loopback port against a
// private database, as an operator would run it.
type authdProc struct {
	t   *testing.T
	URL string
	bin string
	env []string
	db  *storagetest.DB
}

// startAuthd builds cmd/authd, runs `authd serve` and waits for /readyz.
func startAuthd(t *testing.T) *authdProc {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "authd")
	build := exec.Command("go", "build", "-o", bin, "github.com/authd/authd/cmd/authd")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/authd: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	db := storagetest.NewDB(t)
	p := &authdProc{t: t, URL: "http://" + addr, bin: bin, db: db}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AUTHD_") {
			p.env = append(p.env, kv)
		}
	}
	p.env = append(p.env, "AUTHD_ENV=development", "AUTHD_DATABASE_URL="+db.URL, "AUTHD_ISSUER="+p.URL,
		"AUTHD_LISTEN="+addr, "AUTHD_SECRETS_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"AUTHD_BCRYPT_COST=4", "AUTHD_LOG_FORMAT=json")
	logf, err := os.Create(filepath.Join(dir, "authd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve")
	cmd.Env, cmd.Stdout, cmd.Stderr = p.env, logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-exited
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("authd log:\n%s", b)
		}
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
			t.Fatalf("authd exited before ready: %v\n%s", err, b)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			t.Fatal("authd not ready within 60s")
		}
	}
}

// cli runs `authd args... --output json` with stdin and decodes its output.
func (p *authdProc) cli(stdin string, args ...string) map[string]any {
	p.t.Helper()
	cmd := exec.Command(p.bin, append(args, "--output", "json")...)
	cmd.Env, cmd.Stdin = p.env, strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		p.t.Fatalf("authd %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	out := map[string]any{}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		p.t.Fatalf("authd %s: output %q: %v", strings.Join(args, " "), stdout.String(), err)
	}
	return out
}

// do sends a request with an optional bearer token and JSON body and
// returns the status, headers and decoded body.
func do(t *testing.T, method, url, token string, body any, hdr ...string) (int, http.Header, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, resp.Header, out
}

// token gets an access token from authd's token endpoint.
func (p *authdProc) token(id, secret string, form url.Values) string {
	p.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, p.URL+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	tok, _ := out["access_token"].(string)
	if resp.StatusCode != 200 || tok == "" {
		p.t.Fatalf("token: %d %v", resp.StatusCode, out)
	}
	return tok
}
