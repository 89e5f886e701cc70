package httpx_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/authd/authd/internal/httpx"
	"github.com/authd/authd/internal/logging"
)

// syncBuffer is a goroutine-safe log sink for assertions.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) Sync() error    { return nil }
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestServe_GracefulShutdownFinishesInFlightRequest(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		_, _ = io.WriteString(w, "finished")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- httpx.Serve(ctx, httpx.NewServer(h, zap.NewNop()), ln, 10*time.Second) }()

	type result struct {
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/slow")
		if err != nil {
			res <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		res <- result{string(b), err}
	}()
	<-started
	cancel() // SIGTERM arrives while the request is in flight
	// New connections are refused once shutdown began…
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still accepting after shutdown began")
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
	// …while the in-flight request still completes.
	close(release)
	r := <-res
	if r.err != nil || r.body != "finished" {
		t.Fatalf("in-flight request: body %q err %v", r.body, r.err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func TestObserve_LogsRequestFieldsButNoSecrets(t *testing.T) {
	var buf syncBuffer
	log, err := logging.New(logging.Options{Format: "json", Level: "info", Output: zapcore.AddSync(&buf)})
	if err != nil {
		t.Fatal(err)
	}
	r := mux.NewRouter()
	r.Use(httpx.TagRoute)
	r.HandleFunc("/oauth2/token/{id}", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.WriteHeader(http.StatusBadRequest)
	})
	r.HandleFunc("/boom", func(http.ResponseWriter, *http.Request) { panic("kaboom") })
	srv := httpServer(t, httpx.Observe(log, httpx.NewMetrics(prometheus.NewRegistry()))(r))

	secrets := []string{"hunter2-password", "sekret-client-secret", "eyJhbGciOiJFUzI1NiJ9.tok", "auth-code-xyz", "cookie-session-value", "refresh-token-abc"}
	form := url.Values{"password": {secrets[0]}, "client_secret": {secrets[1]}, "code": {secrets[3]}, "refresh_token": {secrets[5]}}
	req, _ := http.NewRequest(http.MethodPost, srv+"/oauth2/token/"+secrets[3]+"?access_token="+secrets[2], strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+secrets[2])
	req.Header.Set("Cookie", "authd_session="+secrets[4])
	req.Header.Set("X-Request-ID", "req-123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-ID"); got != "req-123" {
		t.Errorf("X-Request-ID echoed as %q", got)
	}
	resp, err = http.Get(srv + "/boom")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 || !strings.Contains(resp.Header.Get("Content-Type"), "problem+json") || strings.Contains(string(body), "kaboom") {
		t.Errorf("panic: status %d type %q body %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}

	out := buf.String()
	for _, want := range []string{`"request_id":"req-123"`, `"route":"/oauth2/token/{id}"`, `"status":400`, `"method":"POST"`, `"latency"`, `"remote":"127.0.0.1"`, `"bytes"`, `"stacktrace"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("secret %q reached the log:\n%s", s, out)
		}
	}
}

func httpServer(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func TestCORS_OnlyListedOrigins(t *testing.T) {
	h := httpx.CORS([]string{"https://app.example.com"})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv := httpServer(t, h)
	for _, tc := range []struct {
		origin string
		allow  string
	}{{"https://app.example.com", "https://app.example.com"}, {"https://evil.example.com", ""}} {
		req, _ := http.NewRequest(http.MethodOptions, srv+"/api/v1/me", nil)
		req.Header.Set("Origin", tc.origin)
		req.Header.Set("Access-Control-Request-Method", "GET")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tc.allow {
			t.Errorf("origin %s: Allow-Origin %q, want %q", tc.origin, got, tc.allow)
		}
	}
}
