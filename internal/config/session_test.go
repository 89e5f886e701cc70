package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/authd/authd/internal/config"
)

func TestFromEnv_SessionLifetimes(t *testing.T) {
	c, err := config.FromEnv(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.SessionIdleTimeout != 24*time.Hour || c.SessionMaxAge != 336*time.Hour {
		t.Fatalf("defaults: idle %s, max %s", c.SessionIdleTimeout, c.SessionMaxAge)
	}
	for _, env := range [][]string{
		{"AUTHD_SESSION_IDLE_TIMEOUT=0s"},
		{"AUTHD_SESSION_MAX_AGE=-1h"},
		{"AUTHD_SESSION_IDLE_TIMEOUT=48h", "AUTHD_SESSION_MAX_AGE=24h"},
	} {
		if _, err := config.FromEnv(env); err == nil || !strings.HasPrefix(err.Error(), "AUTHD_SESSION_") {
			t.Errorf("%v: err = %v, want one naming the variable", env, err)
		}
	}
}
