package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/authd/authd/internal/config"
)

func TestFromEnv_InfraDefaults(t *testing.T) {
	c, err := config.FromEnv(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.RequestTimeout != 10*time.Second || c.DBStatementTimeout != 5*time.Second || c.DBLockTimeout != 2*time.Second ||
		c.DBAcquireTimeout != 2*time.Second || len(c.TrustedProxies) != 0 || c.MetricsListen != "" || c.PprofListen != "" {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestFromEnv_InfraErrorsNameTheVariable(t *testing.T) {
	for _, tc := range []struct {
		name, env, wantVar string
	}{
		{"ProxyNotACIDR", "AUTHD_TRUSTED_PROXIES=10.0.0.0/8,lb.example.com", "AUTHD_TRUSTED_PROXIES"},
		{"ProxyHostBits", "AUTHD_TRUSTED_PROXIES=10.0.0.1/8", "AUTHD_TRUSTED_PROXIES"},
		{"ProxyHeader", "AUTHD_TRUSTED_PROXY_HEADER=X-Real-IP", "AUTHD_TRUSTED_PROXY_HEADER"},
		{"LockLongerThanStatement", "AUTHD_DB_LOCK_TIMEOUT=10s", "AUTHD_DB_LOCK_TIMEOUT"},
		{"StatementLongerThanRequest", "AUTHD_DB_STATEMENT_TIMEOUT=1m", "AUTHD_REQUEST_TIMEOUT"},
		{"ZeroAcquire", "AUTHD_DB_ACQUIRE_TIMEOUT=0s", "AUTHD_DB_ACQUIRE_TIMEOUT"},
		{"MetricsNotHostPort", "AUTHD_METRICS_LISTEN=9090", "AUTHD_METRICS_LISTEN"},
		{"MetricsOnPublicListener", "AUTHD_METRICS_LISTEN=:8080", "AUTHD_METRICS_LISTEN"},
		{"PprofNotHostPort", "AUTHD_PPROF_LISTEN=6060", "AUTHD_PPROF_LISTEN"},
		{"PprofOnAllInterfaces", "AUTHD_PPROF_LISTEN=:6060", "AUTHD_PPROF_LISTEN"},
		{"PprofOnAnInterface", "AUTHD_PPROF_LISTEN=0.0.0.0:6060", "AUTHD_PPROF_LISTEN"},
		{"PprofOnAPublicAddress", "AUTHD_PPROF_LISTEN=192.0.2.7:6060", "AUTHD_PPROF_LISTEN"},
		{"PprofOnAName", "AUTHD_PPROF_LISTEN=authd.example.com:6060", "AUTHD_PPROF_LISTEN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.FromEnv([]string{tc.env})
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantVar+":") {
				t.Fatalf("err = %v, want one naming %s", err, tc.wantVar)
			}
		})
	}
	c, err := config.FromEnv([]string{"AUTHD_TRUSTED_PROXIES=10.0.0.0/8, 2001:db8::/32,192.0.2.7", "AUTHD_TRUSTED_PROXY_HEADER=forwarded", "AUTHD_METRICS_LISTEN=127.0.0.1:9090", "AUTHD_PPROF_LISTEN=[::1]:6060"})
	if err != nil || len(c.TrustedProxies) != 3 || c.PprofListen != "[::1]:6060" {
		t.Fatalf("valid settings: %v", err)
	}
}
