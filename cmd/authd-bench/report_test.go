package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFormatPercent(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{{0.31, "31%"}, {0.944, "94%"}, {1.5, "150%"}, {0.0042, "0.4%"}, {0, "0.0%"}} {
		if got := formatPercent(tc.in); got != tc.want {
			t.Errorf("formatPercent(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestFormatRatio(t *testing.T) {
	got := formatRatio("client_credentials", 1705, Limit{Name: "ES256 sign", Rate: 5500})
	if want := "client_credentials = 31% of ES256 sign limit (1705/s of 5500/s, CPU-bound rates)"; got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	got = formatRatio("login", 14.16, Limit{Name: "bcrypt cost 10", Rate: 15})
	if want := "login = 94% of bcrypt cost 10 limit (14.2/s of 15.0/s, CPU-bound rates)"; got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if got := formatRatio("x", 1, Limit{Name: "y"}); !strings.Contains(got, "not measured") {
		t.Errorf("zero limit: %q", got)
	}
}

func TestReport_RatioLinesUseBestLevel(t *testing.T) {
	r := &Report{
		Limits: []Limit{{Key: limitES256Sign, Name: "ES256 sign", Rate: 1000}},
		Scenarios: []ScenarioResult{
			{Name: "client_credentials", Concurrency: 8, Rate: 200, LimitKey: limitES256Sign},
			{Name: "client_credentials", Concurrency: 32, Rate: 300, LimitKey: limitES256Sign},
			{Name: "refresh", Concurrency: 8, NA: "not wired", LimitKey: limitES256Sign},
		},
	}
	r.fillRatios()
	lines := r.RatioLines()
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "client_credentials (c=32) = 30% of ES256 sign limit") {
		t.Errorf("lines %q", lines)
	}
	if r.Scenarios[0].LimitRatio != 0.2 {
		t.Errorf("ratio %v", r.Scenarios[0].LimitRatio)
	}
}

func TestReport_TableAndJSON(t *testing.T) {
	r := &Report{
		Machine: Machine{Cores: 2, CPUModel: "Test CPU"},
		Limits:  []Limit{{Key: limitBcrypt, Name: "bcrypt cost 10", Rate: 20}},
		Scenarios: []ScenarioResult{
			{Name: "login", Concurrency: 4, Rate: 19, LimitKey: limitBcrypt, P50ms: 1, P90ms: 2, P99ms: 3, AuthdCPUms: 100, PostgresCPUms: 0.5, GenCPUms: -1, WALBytesPerOp: 1234.4},
			{Name: "registration", Concurrency: 4, NA: "not wired yet", AuthdCPUms: -1},
			{Name: "jwks", Concurrency: 8, Rate: 10, Errors: 2, FirstError: "jwks: HTTP 500: boom"},
		},
	}
	r.fillRatios()
	var buf bytes.Buffer
	r.WriteTable(&buf)
	out := buf.String()
	for _, want := range []string{"login (c=4) = 95% of bcrypt cost 10 limit", "registration (c=4): n/a (not wired yet)",
		"jwks (c=8): 2 errors; first: jwks: HTTP 500: boom", "18.0 ok", "2 cores, Test CPU",
		"WAL written, bytes per op:\n  login c=4 1234\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	path := filepath.Join(t.TempDir(), "r.json")
	if err := r.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	var back Report
	if err := json.Unmarshal(b, &back); err != nil || len(back.Scenarios) != 3 || back.Scenarios[1].NA == "" {
		t.Errorf("json round trip: %v %+v", err, back)
	}
}

func TestParseFlags_Quick(t *testing.T) {
	o, err := parseFlags([]string{"-quick", "-c", "4,16", "-only", "jwks, login"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.duration.Seconds() != 3 || len(o.levels) != 1 || o.levels[0] != 16 || !o.only["login"] {
		t.Errorf("options %+v", o)
	}
	if _, err := parseFlags([]string{"-c", "0"}, &bytes.Buffer{}); err == nil {
		t.Error("-c 0 accepted")
	}
	if _, err := parseFlags([]string{"-url", "http://x"}, &bytes.Buffer{}); err == nil {
		t.Error("-url without client accepted")
	}
}

// A -scale report prints both worlds' tables and the comparison, with the
// 15% tolerance applied to CPU-bound rates.
func TestReport_ScaleComparison(t *testing.T) {
	r := &Report{
		Scale: &scaleWorld{Key: "l2-s0.1"},
		Empty: &WorldResult{Scenarios: []ScenarioResult{
			{Name: "jwks", Concurrency: 8, Rate: 100, CPURate: 1000},
			{Name: "refresh", Concurrency: 8, Rate: 100, CPURate: 1000},
		}},
		Scenarios: []ScenarioResult{
			{Name: "jwks", Concurrency: 8, Rate: 90, CPURate: 860},
			{Name: "refresh", Concurrency: 8, Rate: 90, CPURate: 840},
		},
	}
	var b strings.Builder
	r.WriteTable(&b)
	out := b.String()
	for _, want := range []string{"empty database: scenarios", "production size: scenarios", "production size beside the empty database"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	var jwks, refresh string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 6 && f[0] == "jwks" && f[2] == "100" {
			jwks = line
		}
		if len(f) > 6 && f[0] == "refresh" && f[2] == "100" {
			refresh = line
		}
	}
	if !strings.Contains(jwks, "86%") || !strings.HasSuffix(strings.TrimSpace(jwks), "ok") {
		t.Errorf("jwks at 86%% should pass: %q", jwks)
	}
	if !strings.Contains(refresh, "84%") || !strings.HasSuffix(strings.TrimSpace(refresh), "MISS") {
		t.Errorf("refresh at 84%% should miss: %q", refresh)
	}
}
