package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// ScenarioResult is one scenario at one concurrency level.
type ScenarioResult struct {
	Name        string `json:"name"`
	Concurrency int    `json:"concurrency"`
	// NA, when set, says why the scenario could not run (feature not wired).
	NA         string  `json:"na,omitempty"`
	Rate       float64 `json:"ops_per_second"`
	ReqsPerOp  int     `json:"http_requests_per_op"`
	P50ms      float64 `json:"p50_ms"`
	P90ms      float64 `json:"p90_ms"`
	P99ms      float64 `json:"p99_ms"`
	Ops        uint64  `json:"ops"`
	Errors     uint64  `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	// CPU milliseconds per operation; -1 when not measured.
	AuthdCPUms    float64 `json:"authd_cpu_ms_per_op"`
	PostgresCPUms float64 `json:"postgres_cpu_ms_per_op"`
	GenCPUms      float64 `json:"generator_cpu_ms_per_op"`
	// HousekeepingPgCPUms is Postgres' CPU per op spent after the scenario
	// on VACUUM and CHECKPOINT (settle.go), not included in PostgresCPUms.
	HousekeepingPgCPUms float64 `json:"housekeeping_postgres_cpu_ms_per_op,omitempty"`
	// CPURate is what the rate would be with every core busy with this
	// scenario (authd + Postgres + generator): cores / CPU per op. Other
	// load on the machine lowers Rate but not this.
	CPURate float64 `json:"ops_per_all_cores_cpu_second,omitempty"`
	// AuthdPeakRSS is authd's VmHWM during the scenario, bytes; 0 unknown.
	AuthdPeakRSS int64 `json:"authd_peak_rss_bytes"`
	// WALBytesPerOp is the WAL Postgres wrote per operation during the
	// measured part (the purge and autovacuum included when they ran).
	WALBytesPerOp float64 `json:"wal_bytes_per_op,omitempty"`
	MeterErr      string  `json:"meter_error,omitempty"`
	LimitKey      string  `json:"limit,omitempty"`
	LimitRatio    float64 `json:"limit_ratio,omitempty"`
	// Target is issue 7's rate target (ops/s), 0 when it has none.
	Target float64 `json:"target_ops_per_second,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	Cores    int    `json:"cores"`
	CPUModel string `json:"cpu_model"`
	Go       string `json:"go"`
}

// Report is the whole run, as written to -json.
type Report struct {
	Date      time.Time        `json:"date"`
	Command   string           `json:"command"`
	Machine   Machine          `json:"machine"`
	Setup     []string         `json:"setup"`
	StartupMS float64          `json:"startup_to_ready_ms,omitempty"`
	Limits    []Limit          `json:"limits"`
	Scenarios []ScenarioResult `json:"scenarios"`
	// With -scale: Scenarios ran on the production-size world described by
	// Scale, and Empty holds the same run's figures on an empty database.
	Scale *scaleWorld  `json:"production_size,omitempty"`
	Empty *WorldResult `json:"empty_database,omitempty"`
}

// WorldResult is one world's part of a -scale run.
type WorldResult struct {
	Setup     []string         `json:"setup"`
	StartupMS float64          `json:"startup_to_ready_ms,omitempty"`
	Scenarios []ScenarioResult `json:"scenarios"`
}

// scaleTolerance is how far below its empty-database figure a scenario may
// fall on the production-size world (CPU-bound rates).
const scaleTolerance = 0.15

func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), CPUModel: "unknown"}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

func (r *Report) limit(key string) (Limit, bool) {
	for _, l := range r.Limits {
		if l.Key == key {
			return l, true
		}
	}
	return Limit{}, false
}

// formatPercent prints a ratio as a percentage: whole percent from 1% up,
// one decimal below.
func formatPercent(ratio float64) string {
	p := ratio * 100
	if p < 1 {
		return fmt.Sprintf("%.1f%%", p)
	}
	return fmt.Sprintf("%.0f%%", p)
}

// formatRatio is the line printed beside a scenario, e.g.
// "client_credentials = 31% of ES256 sign limit (930/s of 3000/s)".
func formatRatio(name string, rate float64, l Limit) string {
	if l.Rate <= 0 {
		return fmt.Sprintf("%s: %s limit not measured", name, l.Name)
	}
	return fmt.Sprintf("%s = %s of %s limit (%s/s of %s/s, CPU-bound rates)", name, formatPercent(rate/l.Rate), l.Name, formatRate(rate), formatRate(l.Rate))
}

func formatRate(r float64) string {
	switch {
	case r >= 100:
		return fmt.Sprintf("%.0f", r)
	case r >= 10:
		return fmt.Sprintf("%.1f", r)
	default:
		return fmt.Sprintf("%.2f", r)
	}
}

func ms(v float64) string {
	switch {
	case v < 0:
		return "?"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// WriteTable prints the limits, the scenarios and the ratio lines.
func (r *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "authd bench — %s — %d cores, %s — %s\n", r.Date.Format("2006-01-02 15:04 MST"), r.Machine.Cores, r.Machine.CPUModel, r.Machine.Go)
	for _, s := range r.Setup {
		fmt.Fprintf(w, "  %s\n", s)
	}
	if r.StartupMS > 0 {
		fmt.Fprintf(w, "  authd start-up to ready: %.0f ms (target ≤ 300 ms)\n", r.StartupMS)
	}
	fmt.Fprintln(w, "\nmachine limits (all cores, nothing else of ours running):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, l := range r.Limits {
		fmt.Fprintf(tw, "  %s\t%s/s\t(wall clock: %s/s)\t\n", l.Name, formatRate(l.Rate), formatRate(l.WallRate))
	}
	tw.Flush()

	if r.Empty != nil {
		fmt.Fprintln(w, "\nempty database:")
		for _, line := range r.Empty.Setup {
			fmt.Fprintf(w, "  %s\n", line)
		}
		if r.Empty.StartupMS > 0 {
			fmt.Fprintf(w, "  authd start-up to ready: %.0f ms (target ≤ 300 ms)\n", r.Empty.StartupMS)
		}
		writeScenarioTable(w, "empty database: ", r.Empty.Scenarios)
		writeScenarioTable(w, "production size: ", r.Scenarios)
		r.writeScaleComparison(w)
	} else {
		writeScenarioTable(w, "", r.Scenarios)
	}

	fmt.Fprintln(w)
	for _, line := range r.RatioLines() {
		fmt.Fprintln(w, line)
	}
	var hk []string
	for _, s := range r.Scenarios {
		if s.HousekeepingPgCPUms > 0 {
			hk = append(hk, fmt.Sprintf("%s c=%d %s", s.Name, s.Concurrency, ms(s.HousekeepingPgCPUms)))
		}
	}
	if len(hk) > 0 {
		fmt.Fprintln(w, "Postgres settled (VACUUM (ANALYZE) + CHECKPOINT) after each scenario; its CPU, ms per op of the scenario, not in pg CPU:")
		fmt.Fprintln(w, "  "+strings.Join(hk, ", "))
	}
	writeWAL := func(title string, scenarios []ScenarioResult) {
		var wal []string
		for _, s := range scenarios {
			if s.WALBytesPerOp > 0 {
				wal = append(wal, fmt.Sprintf("%s c=%d %.0f", s.Name, s.Concurrency, s.WALBytesPerOp))
			}
		}
		if len(wal) > 0 {
			fmt.Fprintf(w, "%sWAL written, bytes per op:\n  %s\n", title, strings.Join(wal, ", "))
		}
	}
	if r.Empty != nil {
		writeWAL("empty database: ", r.Empty.Scenarios)
		writeWAL("production size: ", r.Scenarios)
	} else {
		writeWAL("", r.Scenarios)
	}
	for _, s := range r.Scenarios {
		switch {
		case s.NA != "":
			fmt.Fprintf(w, "%s (c=%d): n/a (%s)\n", s.Name, s.Concurrency, s.NA)
		case s.Errors > 0:
			fmt.Fprintf(w, "%s (c=%d): %d errors; first: %s\n", s.Name, s.Concurrency, s.Errors, s.FirstError)
		}
		if s.MeterErr != "" {
			fmt.Fprintf(w, "%s (c=%d): CPU meter: %s\n", s.Name, s.Concurrency, s.MeterErr)
		}
	}
}

func writeScenarioTable(w io.Writer, title string, scenarios []ScenarioResult) {
	fmt.Fprintln(w, "\n"+title+"scenarios (ops/s measured; cpu-bound/s = cores ÷ (authd+pg+gen CPU per op), the rate with every core on it;")
	fmt.Fprintln(w, "latency in ms; CPU in ms per op; RSS = authd peak; vs limit = cpu-bound/s ÷ the limit's rate):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tconc\tops/s\tcpu-bound/s\tp50\tp90\tp99\terrors\tauthd CPU\tpg CPU\tgen CPU\tRSS MB\tvs limit\ttarget\t")
	for _, s := range scenarios {
		if s.NA != "" {
			fmt.Fprintf(tw, "%s\t%d\tn/a\t\t\t\t\t\t\t\t\t\t\t\t\n", s.Name, s.Concurrency)
			continue
		}
		rss := "?"
		if s.AuthdPeakRSS > 0 {
			rss = fmt.Sprintf("%.0f", float64(s.AuthdPeakRSS)/(1<<20))
		}
		ratio := ""
		if s.LimitRatio > 0 {
			ratio = formatPercent(s.LimitRatio)
		}
		target := ""
		if s.Target > 0 {
			mark := "MISS"
			if s.Rate >= s.Target {
				mark = "ok"
			}
			target = fmt.Sprintf("%s %s", formatRate(s.Target), mark)
		}
		cpuRate := "?"
		if s.CPURate > 0 {
			cpuRate = formatRate(s.CPURate)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", s.Name, s.Concurrency, formatRate(s.Rate), cpuRate,
			ms(s.P50ms), ms(s.P90ms), ms(s.P99ms), s.Errors, ms(s.AuthdCPUms), ms(s.PostgresCPUms), ms(s.GenCPUms), rss, ratio, target)
	}
	tw.Flush()

}

// writeScaleComparison prints each scenario's production-size figures
// beside its empty-database ones from the same run.
func (r *Report) writeScaleComparison(w io.Writer) {
	empty := map[string]ScenarioResult{}
	for _, s := range r.Empty.Scenarios {
		empty[s.Name+"/"+itoa(s.Concurrency)] = s
	}
	fmt.Fprintf(w, "\nproduction size beside the empty database (same run; ratio = production cpu-bound/s ÷ empty cpu-bound/s, target ≥ %.0f%%):\n", 100*(1-scaleTolerance))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tconc\tops/s empty\tops/s prod\tcpu-bound empty\tcpu-bound prod\tratio\tp99 empty\tp99 prod\tpg CPU empty\tpg CPU prod\tRSS MB prod\t\t")
	for _, s := range r.Scenarios {
		e, ok := empty[s.Name+"/"+itoa(s.Concurrency)]
		if !ok || s.NA != "" || e.NA != "" {
			fmt.Fprintf(tw, "%s\t%d\tn/a\t\t\t\t\t\t\t\t\t\t\t\n", s.Name, s.Concurrency)
			continue
		}
		ratio, mark := "?", ""
		if s.CPURate > 0 && e.CPURate > 0 {
			q := s.CPURate / e.CPURate
			ratio = formatPercent(q)
			mark = "ok"
			if q < 1-scaleTolerance {
				mark = "MISS"
			}
		}
		rss := "?"
		if s.AuthdPeakRSS > 0 {
			rss = fmt.Sprintf("%.0f", float64(s.AuthdPeakRSS)/(1<<20))
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", s.Name, s.Concurrency,
			formatRate(e.Rate), formatRate(s.Rate), formatRate(e.CPURate), formatRate(s.CPURate), ratio,
			ms(e.P99ms), ms(s.P99ms), ms(e.PostgresCPUms), ms(s.PostgresCPUms), rss, mark)
	}
	tw.Flush()
}

// RatioLines gives, per scenario, its best level against its limit.
func (r *Report) RatioLines() []string {
	var lines []string
	best := map[string]ScenarioResult{}
	var order []string
	for _, s := range r.Scenarios {
		if s.NA != "" || s.LimitKey == "" {
			continue
		}
		b, seen := best[s.Name]
		if !seen {
			order = append(order, s.Name)
		}
		if !seen || s.LimitRatio > b.LimitRatio {
			best[s.Name] = s
		}
	}
	for _, name := range order {
		s := best[name]
		if l, ok := r.limit(s.LimitKey); ok {
			lines = append(lines, formatRatio(fmt.Sprintf("%s (c=%d)", name, s.Concurrency), s.LimitRatio*l.Rate, l))
		}
	}
	return lines
}

// WriteJSON writes the report to path.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
