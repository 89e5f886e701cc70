package main

import (
	"bytes"
	"context"
	"regexp"
	"testing"
)

// TestSoak_Runs runs `make soak-tokens` for 9 s on a real world (at least 6 report intervals for its verdict):
// both halves of its load (client_credentials and refresh rotations) must
// run without errors, and the closing summary must be printed. The soak's
// refresh workers once crashed on their first rotation, unnoticed, because
// nothing ran the soak outside a 20-minute make target.
func TestSoak_Runs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds authd and starts PostgreSQL")
	}
	var out, log bytes.Buffer
	err := run(context.Background(), []string{"-soak", "9s", "-soak-rate", "40", "-soak-workers", "4", "-soak-every", "1s", "-pg-defaults"}, &out, &log)
	if err != nil {
		t.Fatalf("soak: %v\n%s\n%s", err, out.String(), log.String())
	}
	m := regexp.MustCompile(`(\d+) ops \(\d+/s\), (\d+) errors`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no summary line:\n%s", out.String())
	}
	if m[1] == "0" || m[2] != "0" {
		t.Fatalf("soak: %s ops, %s errors:\n%s", m[1], m[2], out.String())
	}
}
