package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRunLoad_BareHandler runs the generator for about a second against an
// in-process bare handler and checks what it measured.
func TestRunLoad_BareHandler(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(helloHandler))
	defer srv.Close()
	c := newClient(4, nil)
	defer c.CloseIdleConnections()
	meters := map[string]CPUSource{"gen": selfCPU{}}
	res, err := RunLoad(context.Background(), LoadConfig{Concurrency: 4, Duration: 800 * time.Millisecond,
		Warmup: 200 * time.Millisecond, Meters: meters}, helloWorker(c, srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || res.Ops < 100 {
		t.Fatalf("ops %d errors %d (%s)", res.Ops, res.Errors, res.FirstErr)
	}
	if res.Elapsed < 800*time.Millisecond || res.Elapsed > 2*time.Second {
		t.Errorf("elapsed %s, want about the measured 800ms", res.Elapsed)
	}
	if p50, p99 := res.Hist.Quantile(0.5), res.Hist.Quantile(0.99); p50 <= 0 || p99 < p50 {
		t.Errorf("p50 %s p99 %s", p50, p99)
	}
	if d, ok := res.CPUPerOp("gen"); !ok || d <= 0 {
		t.Errorf("generator CPU per op %s %v (meter error %q)", d, ok, res.MeterErr)
	}
	if res.Rate() <= 0 {
		t.Error("zero rate")
	}
}

func TestRunLoad_CountsErrorsAndKeepsTheFirst(t *testing.T) {
	var n atomic.Int64
	res, err := RunLoad(context.Background(), LoadConfig{Concurrency: 2, Duration: 100 * time.Millisecond},
		func(context.Context, int) (Op, error) {
			return func(context.Context) error {
				if n.Add(1)%2 == 0 {
					return errors.New("boom")
				}
				return nil
			}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors == 0 || res.Errors > res.Ops || res.FirstErr != "boom" {
		t.Errorf("ops %d errors %d first %q", res.Ops, res.Errors, res.FirstErr)
	}
}

// A failure in the warm-up is reported: each worker's first op (inside
// the warm-up) fails, every later one succeeds.
func TestRunLoad_CountsWarmupErrors(t *testing.T) {
	res, err := RunLoad(context.Background(), LoadConfig{Concurrency: 2, Duration: 100 * time.Millisecond, Warmup: time.Second},
		func(context.Context, int) (Op, error) {
			first := true
			return func(context.Context) error {
				if first {
					first = false
					return errors.New("expired token")
				}
				return nil
			}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 2 || res.FirstErr != "expired token" || res.Ops == 0 {
		t.Errorf("ops %d errors %d first %q: want both warm-up failures reported", res.Ops, res.Errors, res.FirstErr)
	}
}

func TestRunLoad_WorkerSetupError(t *testing.T) {
	_, err := RunLoad(context.Background(), LoadConfig{Concurrency: 2, Duration: time.Second},
		func(_ context.Context, i int) (Op, error) {
			if i == 1 {
				return nil, errors.New("no chain")
			}
			return func(context.Context) error { return nil }, nil
		})
	if err == nil || !strings.Contains(err.Error(), "worker 1: no chain") {
		t.Errorf("err = %v", err)
	}
}

func TestSourceIPs_DistinctLoopback(t *testing.T) {
	var s sourceIPs
	a, b := s.next(), s.next()
	if a.Equal(b) || !a.IsLoopback() || !b.IsLoopback() {
		t.Errorf("%s %s", a, b)
	}
	// A rotating client actually connects from the new address.
	var seen atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(strings.Split(r.RemoteAddr, ":")[0])
	}))
	defer srv.Close()
	rc := &rotatingClient{ips: &s, every: 1}
	for range 2 {
		r, err := get(context.Background(), rc.client(), srv.URL, nil)
		if err != nil || r.Status != 200 {
			t.Fatalf("%v %v", r, err)
		}
	}
	if got := seen.Load().(string); got != "127.1.0.4" {
		t.Errorf("last request came from %s, want 127.1.0.4", got)
	}
}

func TestHiddenFields(t *testing.T) {
	page := []byte(`<form method="post" action="/logout"><input type="hidden" name="csrf_token" value="other"></form>
<form method="post" action="/login"><input type="hidden" name="csrf_token" value="a&amp;b">
<input type="hidden" name="return_to" value="/oauth2/auth?x=1"></form>`)
	f := hiddenFields(page, "/login")
	if f.Get("csrf_token") != "a&b" || f.Get("return_to") != "/oauth2/auth?x=1" {
		t.Errorf("fields %v", f)
	}
}
