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
