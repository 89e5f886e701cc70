package main

import (
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/authd/authd/storage/storagetest"
)

// With AUTHD_METRICS_LISTEN, /metrics is served on its own address only:
// nothing the public listener (and so the load balancer) exposes shows it.
func TestServe_MetricsListenerKeepsMetricsOffThePublicOne(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ts := startServer(t, storagetest.NewDB(t).URL, []string{"AUTHD_METRICS_LISTEN=" + addr}, nil)
	if code, _ := get(t, ts.URL+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d", code)
	}
	if code, _ := get(t, ts.URL+"/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics on the public listener: %d, want 404", code)
	}
	code, body := get(t, "http://"+addr+"/metrics")
	if code != http.StatusOK || !strings.Contains(body, "authd_http_requests_total") || !strings.Contains(body, "authd_db_pool_acquire_timeouts_total") {
		t.Fatalf("/metrics on AUTHD_METRICS_LISTEN: %d\n%.300s", code, body)
	}
}

// Profiles are served only on AUTHD_PPROF_LISTEN, never on the public
// listener, and not at all when it is unset.
func TestServe_PprofOnlyOnItsOwnListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	db := storagetest.NewDB(t).URL
	ts := startServer(t, db, []string{"AUTHD_PPROF_LISTEN=" + addr}, nil)
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline"} {
		if code, _ := get(t, ts.URL+p); code != http.StatusNotFound {
			t.Errorf("%s on the public listener: %d, want 404", p, code)
		}
	}
	code, body := get(t, "http://"+addr+"/debug/pprof/")
	if code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Fatalf("/debug/pprof/ on AUTHD_PPROF_LISTEN: %d\n%.300s", code, body)
	}
	if code, _ := get(t, "http://"+addr+"/debug/pprof/profile?seconds=1"); code != http.StatusOK {
		t.Fatalf("CPU profile on AUTHD_PPROF_LISTEN: %d", code)
	}

	plain := startServer(t, db, nil, nil)
	if code, _ := get(t, plain.URL+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/ without AUTHD_PPROF_LISTEN: %d, want 404", code)
	}
}
