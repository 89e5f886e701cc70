package ratelimit_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/authd/authd/internal/ratelimit"
)

func TestLimiter_Allow(t *testing.T) {
	now := time.Unix(1000, 0)
	l := ratelimit.New(ratelimit.Config{Every: 10 * time.Second, Burst: 2, Now: func() time.Time { return now }})
	for i := 0; i < 2; i++ {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("request %d refused within burst", i)
		}
	}
	ok, wait := l.Allow("a")
	if ok || wait <= 0 || wait > 10*time.Second {
		t.Fatalf("third request: ok=%v wait=%s", ok, wait)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("another key was limited")
	}
	now = now.Add(10 * time.Second)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("token not refilled")
	}
}

func TestLimiter_Blocked(t *testing.T) {
	now := time.Unix(1000, 0)
	l := ratelimit.New(ratelimit.Config{Every: 10 * time.Second, Burst: 2, Now: func() time.Time { return now }})
	if blocked, _ := l.Blocked("a"); blocked {
		t.Fatal("an unseen key is blocked")
	}
	l.Allow("a")
	if blocked, _ := l.Blocked("a"); blocked {
		t.Fatal("blocked with a token left")
	}
	l.Allow("a")
	for i := 0; i < 3; i++ { // Blocked never takes a token
		if blocked, wait := l.Blocked("a"); !blocked || wait <= 0 || wait > 10*time.Second {
			t.Fatalf("check %d: blocked=%v wait=%s", i, blocked, wait)
		}
	}
	now = now.Add(10 * time.Second)
	if blocked, _ := l.Blocked("a"); blocked {
		t.Fatal("still blocked after the refill")
	}
}

func TestLimiter_BoundedMemory(t *testing.T) {
	l := ratelimit.New(ratelimit.Config{Every: time.Second, Burst: 1, MaxKeys: 100})
	for i := 0; i < 10000; i++ {
		l.Allow(fmt.Sprint("10.0.", i/256, ".", i%256))
	}
	if l.Len() != 100 {
		t.Fatalf("keys held = %d, want 100", l.Len())
	}
}

func TestLimiter_Middleware(t *testing.T) {
	l := ratelimit.New(ratelimit.Config{Every: time.Hour, Burst: 1})
	h := l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	do := func(method string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(method, "/login", nil)
		req.RemoteAddr = "192.0.2.1:1234"
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := do("POST"); rec.Code != 200 {
		t.Fatalf("first POST: %d", rec.Code)
	}
	rec := do("POST")
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "3600" || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("second POST: %d Retry-After=%q", rec.Code, rec.Header().Get("Retry-After"))
	}
	if rec := do("GET"); rec.Code != 200 {
		t.Fatalf("GET limited: %d", rec.Code)
	}
}

func TestWaitText(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "1 second", 300 * time.Millisecond: "1 second", time.Second: "1 second",
		1500 * time.Millisecond: "2 seconds", 45 * time.Second: "45 seconds", 119 * time.Second: "119 seconds",
		2 * time.Minute: "2 minutes", 121 * time.Second: "3 minutes", 15 * time.Minute: "15 minutes",
	} {
		if got := ratelimit.WaitText(d); got != want {
			t.Errorf("WaitText(%s) = %q, want %q", d, got, want)
		}
		if got, ra := ratelimit.WaitText(d), ratelimit.RetryAfter(d); d < 2*time.Minute && got != ra+" seconds" && got != "1 second" {
			t.Errorf("WaitText(%s) = %q disagrees with Retry-After %s", d, got, ra)
		}
	}
}
