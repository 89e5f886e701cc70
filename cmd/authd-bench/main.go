// Command authd-bench is authd's load generator (`make bench`). By default
// it starts its own world (a durable private PostgreSQL, a freshly built
// `authd serve`), prepares clients, users and tokens, measures the
// machine's own limits (signatures, bcrypt, SHA-256, a bare net/http
// server through this same generator) and runs each scenario of issue 7
// for a bounded time at a few concurrency levels over keep-alive HTTP on
// 127.0.0.1. It prints a table, writes it as JSON, and compares each
// scenario with the limit that bounds it.
//
// The generator shares the cores with authd and PostgreSQL; its own CPU is
// reported beside theirs.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	quick        bool
	duration     time.Duration
	warmup       time.Duration
	levels       []int
	bcryptLevels []int
	limitsFor    time.Duration
	jsonPath     string
	only         map[string]bool
	bcryptCost   int
	authdBin     string
	maxConns     int
	url          string
	clientID     string
	clientSecret string
	authdPID     int
	pgData       string
	render       string
	scale        float64
	scaleDir     string
	loadOnly     bool
	profileDir   string
	startups     int
	noVerify     bool
	pgDefaults   bool
	pg           pgTuning // set by run from pgDefaults and the machine
	soak         soakConfig
}

// worldConfig is the world every mode of the bench starts from these flags;
// dataDir is a cached production-size world's database, or "" for an empty
// one.
func (o *options) worldConfig(dataDir string, log io.Writer) worldConfig {
	return worldConfig{DataDir: dataDir, BcryptCost: o.bcryptCost, AuthdBin: o.authdBin, MaxConns: o.maxConns,
		PG: o.pg, Log: log}
}

func main() {
	if len(os.Args) == 2 && os.Args[1] == "-serve-hello" {
		if err := serveHello(); err != nil {
			fmt.Fprintln(os.Stderr, "authd-bench:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "authd-bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("authd-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	var levels, bLevels, only string
	fs.BoolVar(&o.quick, "quick", false, "a few seconds per scenario, one concurrency level (make bench-quick)")
	fs.DurationVar(&o.duration, "duration", 15*time.Second, "measured time per scenario and level")
	fs.StringVar(&levels, "c", "8,32", "concurrency levels (workers = keep-alive connections)")
	fs.StringVar(&bLevels, "c-bcrypt", "4,16", "concurrency levels of the bcrypt-bound scenarios (login, registration, code flow)")
	fs.DurationVar(&o.limitsFor, "limits-duration", 2*time.Second, "time per machine-limit measurement")
	fs.StringVar(&o.jsonPath, "json", "bench-results.json", "write results as JSON here (empty: don't)")
	fs.StringVar(&only, "only", "", "comma-separated scenarios to run (default: all)")
	fs.IntVar(&o.bcryptCost, "bcrypt-cost", 10, "AUTHD_BCRYPT_COST of the authd under test, and of the bcrypt limit")
	fs.StringVar(&o.authdBin, "authd-bin", "", "prebuilt authd binary (default: go build ./cmd/authd)")
	fs.IntVar(&o.maxConns, "db-max-conns", 0, "AUTHD_DB_MAX_CONNS for authd (0: its default)")
	fs.StringVar(&o.url, "url", "", "benchmark a running authd at this URL instead of starting one (client_credentials, introspection, jwks, registration)")
	fs.StringVar(&o.clientID, "client-id", "", "with -url: a client_credentials client with scopes \"credits:charge credits:grant introspect\"")
	fs.StringVar(&o.clientSecret, "client-secret", "", "with -url: its secret")
	fs.IntVar(&o.authdPID, "authd-pid", 0, "with -url: authd's pid, for its CPU and RSS")
	fs.StringVar(&o.pgData, "pgdata", "", "with -url: PostgreSQL's data directory, for its CPU")
	fs.StringVar(&o.render, "render", "", "print the table of an earlier -json file and exit")
	fs.Float64Var(&o.scale, "scale", 0, "also run every scenario on a production-size database (1 = 1M users, 50M ledger entries, 10M token rows; 0.01 for a quick one), beside the empty one (make bench-scale)")
	fs.DurationVar(&o.soak.Duration, "soak", 0, "instead of the scenarios: steady token issuance and refresh for this long, table sizes and p99 every -soak-every (make soak-tokens; on the production-size world with -scale)")
	fs.Float64Var(&o.soak.Rate, "soak-rate", 300, "with -soak: operations per second (half client_credentials, half refresh)")
	fs.IntVar(&o.soak.Workers, "soak-workers", 16, "with -soak: workers (half of them rotate a refresh chain each)")
	fs.DurationVar(&o.soak.Every, "soak-every", time.Minute, "with -soak: report interval")
	fs.BoolVar(&o.loadOnly, "load-only", false, "with -scale: load (or find) the production-size world, then exit")
	fs.StringVar(&o.profileDir, "cpuprofile-dir", "", "write a CPU profile of authd (<world>-<scenario>-c<n>.pprof, through AUTHD_PPROF_LISTEN on loopback) and Postgres' statements (.statements.txt, pg_stat_statements loaded for the run) per scenario and level here")
	fs.BoolVar(&o.noVerify, "no-verify", false, "skip authd ledger verify after the scenarios (it reads the whole ledger: minutes at -scale 1); the report says it was skipped")
	fs.IntVar(&o.startups, "startups", 0, "instead of the scenarios: start authd this many times and print start-up to ready (on the empty world, and with -scale on the production-size one too)")
	fs.BoolVar(&o.pgDefaults, "pg-defaults", false, "run the bench's Postgres with its stock settings (128 MB shared_buffers, no WAL compression) instead of a production server's (pgtuning.go)")
	fs.StringVar(&o.scaleDir, "scale-dir", "", "with -scale: where loaded worlds are cached (default cmd/authd-bench/.scale)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	var err error
	if o.levels, err = parseLevels(levels); err != nil {
		return nil, fmt.Errorf("-c: %w", err)
	}
	if o.bcryptLevels, err = parseLevels(bLevels); err != nil {
		return nil, fmt.Errorf("-c-bcrypt: %w", err)
	}
	if o.quick {
		o.duration, o.limitsFor = 3*time.Second, time.Second
		o.levels, o.bcryptLevels = o.levels[len(o.levels)-1:], o.bcryptLevels[:1]
	}
	o.warmup = min(time.Second, o.duration/5)
	if only != "" {
		o.only = map[string]bool{}
		for _, s := range strings.Split(only, ",") {
			o.only[strings.TrimSpace(s)] = true
		}
	}
	if o.url != "" && (o.clientID == "" || o.clientSecret == "") {
		return nil, fmt.Errorf("-url needs -client-id and -client-secret")
	}
	if o.scale < 0 || o.scale > 10 || (o.scale > 0 && o.url != "") {
		return nil, fmt.Errorf("-scale takes a factor in (0, 10] and needs the bench's own world (not -url)")
	}
	return o, nil
}

func parseLevels(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad concurrency %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if o.render != "" {
		return renderJSON(o.render, stdout)
	}
	if o.pg, err = tuningFor(o); err != nil {
		return err
	}
	rep := &Report{Date: time.Now(), Machine: machine(), Command: "go run ./cmd/authd-bench " + strings.Join(args, " ")}
	rep.Command = strings.TrimSpace(rep.Command)

	var sw *scaleWorld
	if o.scale > 0 {
		root, err := scaleCacheRoot(ctx, o.scaleDir)
		if err != nil {
			return err
		}
		release, err := lockScale(root)
		if err != nil {
			return err
		}
		defer release()
		if sw, err = ensureScale(ctx, root, specFor(o.scale), stderr); err != nil {
			return err
		}
		if o.loadOnly {
			fmt.Fprintf(stdout, "production-size world %s: %s\n", sw.Key, strings.Join(sw.Counts, ", "))
			return nil
		}
	}
	if o.startups > 0 {
		if err := measureStartups(ctx, o, "empty database", "", o.startups, stdout, stderr); err != nil {
			return err
		}
		if sw != nil {
			return measureStartups(ctx, o, "production size "+sw.Key, sw.dir, o.startups, stdout, stderr)
		}
		return nil
	}
	if o.soak.Duration > 0 {
		if o.soak.Rate <= 0 || o.soak.Workers < 2 || o.soak.Every <= 0 {
			return errors.New("-soak needs -soak-rate > 0, -soak-workers ≥ 2 and -soak-every > 0")
		}
		dir := ""
		if sw != nil {
			dir = sw.dir
		}
		return runSoak(ctx, o, o.soak, dir, stdout, stderr)
	}
	fmt.Fprintln(stderr, "measuring machine limits …")
	if rep.Limits, err = measureCryptoLimits(ctx, o.limitsFor, o.bcryptCost); err != nil {
		return err
	}
	bare, err := measureBareHTTP(ctx, o)
	if err != nil {
		return err
	}
	rep.Limits = append(rep.Limits, bare)

	if sw != nil && o.authdBin == "" {
		// Both worlds run the same build (a tree edited during the run
		// must not give the second world another authd).
		dir, err := os.MkdirTemp("", "authd-bench-bin-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if err := os.Chmod(dir, 0o755); err != nil {
			return err
		}
		fmt.Fprintln(stderr, "building ./cmd/authd …")
		o.authdBin = filepath.Join(dir, "authd")
		if err := buildAuthd(ctx, o.authdBin); err != nil {
			return err
		}
	}
	if err := runWorld(ctx, o, rep, "", 0, stderr); err != nil {
		return err
	}
	if sw != nil {
		// The same scenarios again on the production-size world; the empty
		// world's figures stay beside them.
		empty := *rep
		rep.Empty = &WorldResult{Setup: empty.Setup, StartupMS: empty.StartupMS, Scenarios: empty.Scenarios}
		rep.Setup, rep.StartupMS, rep.Scenarios = nil, 0, nil
		rep.Scale = sw
		rep.Setup = append(rep.Setup, fmt.Sprintf("production-size world %s (cmd/authd-bench/.scale): %s; loaded in %.0f s (%s); bench run %d on this cache",
			sw.Key, strings.Join(sw.Counts, ", "), sw.LoadSeconds, strings.Join(sw.Phases, "; "), sw.Runs))
		if err := runWorld(ctx, o, rep, sw.dir, sw.Spec.Users, stderr); err != nil {
			return err
		}
	}
	rep.fillRatios()
	rep.WriteTable(stdout)
	if o.jsonPath != "" {
		if err := rep.WriteJSON(o.jsonPath); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "results written to %s\n", o.jsonPath)
	}
	return nil
}

// runWorld starts a world (its database in dataDir when set: a cached
// production-size one), prepares the fixture, runs every scenario into rep
// and verifies the ledger.
func runWorld(ctx context.Context, o *options, rep *Report, dataDir string, loadedUsers int, stderr io.Writer) error {
	maxLevel := max(maxOf(o.levels), maxOf(o.bcryptLevels))
	var err error
	var w *world
	var f *fixture
	if o.url == "" {
		cfg := o.worldConfig(dataDir, stderr)
		cfg.Pprof = o.profileDir != ""
		w, err = startWorld(ctx, cfg)
		if err != nil {
			return err
		}
		defer w.stop()
		w.loadedUsers = loadedUsers
		rep.StartupMS = float64(w.startup.Microseconds()) / 1000
		rep.Setup = append(rep.Setup,
			"authd serve (AUTHD_ENV=production, JSON logs to a file, bcrypt cost "+itoa(o.bcryptCost)+") built from this tree as it ships (CGO_ENABLED=0, -trimpath, stripped), on 127.0.0.1",
			"PostgreSQL: private cluster, durable (fsync on, synchronous_commit on, full_page_writes on); settings: "+o.pg.String(),
			"the load generator runs on the same cores as authd and PostgreSQL (its own CPU: gen CPU)")
		f = prepare(ctx, w, maxLevel, stderr)
	} else {
		w = &world{URL: strings.TrimRight(o.url, "/"), authdPID: o.authdPID, pgData: o.pgData}
		rep.Setup = append(rep.Setup, "target: "+w.URL+" (not started by the bench)")
		f = &fixture{base: w.URL, svcID: o.clientID, svcSecret: o.clientSecret, na: map[string]string{
			needWeb: "needs the bench's own world (not -url)", needChains: "needs the bench's own world (not -url)",
			needSpend: "needs the bench's own world (not -url)"}}
	}

	meters := map[string]CPUSource{"gen": selfCPU{}}
	hz := clockTicks()
	if w.authdPID > 0 {
		meters["authd"] = procCPU{pid: w.authdPID, hz: hz}
	}
	if w.pgData != "" {
		meters["postgres"] = treeCPU{pidFile: postmasterPidFile(w.pgData), hz: hz}
	}
	if w.dbURL != "" {
		wal, err := newWALMeter(ctx, w.dbURL)
		if err != nil {
			return err
		}
		defer wal.close()
		meters[walMeterName] = wal
	}
	w.label = "empty"
	if dataDir != "" {
		w.label = "prod"
	}
	env := newScenarioEnv(f, nil)
	for _, sc := range scenarios() {
		if o.only != nil && !o.only[sc.name] {
			continue
		}
		levels := o.levels
		if sc.bcryptBound {
			levels = o.bcryptLevels
		}
		for _, c := range levels {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := settleAfter(ctx, w, meters, rep.Scenarios); err != nil {
				return err
			}
			res := runScenario(ctx, sc, c, o, w, env, meters, stderr)
			rep.Scenarios = append(rep.Scenarios, res)
		}
	}
	if err := settleAfter(ctx, w, meters, rep.Scenarios); err != nil {
		return err
	}
	if o.noVerify && w.dbURL != "" {
		rep.Setup = append(rep.Setup, "ledger verify after the run: SKIPPED (-no-verify)")
	}
	if !o.noVerify && w.dbURL != "" && f.missing(needSpend) == "" {
		fmt.Fprintln(stderr, "ledger verify …")
		t0 := time.Now()
		out, err := w.cli(ctx, "", "ledger", "verify")
		took := time.Since(t0).Round(time.Second)
		if err != nil {
			rep.Setup = append(rep.Setup, "ledger verify after the run: FAILED: "+err.Error())
		} else {
			line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
			rep.Setup = append(rep.Setup, "ledger verify after the run: clean ("+line+")")
		}
		if took >= 10*time.Second {
			rep.Setup = append(rep.Setup, "ledger verify took "+took.String())
		}
	}
	return nil
}

// settleAfter settles the bench's own Postgres (settle.go) and charges its
// CPU to the last scenario run, if any.
func settleAfter(ctx context.Context, w *world, meters map[string]CPUSource, done []ScenarioResult) error {
	if w.dbURL == "" {
		return nil
	}
	d, err := settle(ctx, w.dbURL, meters["postgres"])
	if err != nil {
		return err
	}
	if n := len(done); n > 0 && done[n-1].Ops > 0 {
		done[n-1].HousekeepingPgCPUms = msOf(d) / float64(done[n-1].Ops)
	}
	return nil
}

func maxOf(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// measureBareHTTP runs the bare net/http server through the generator at
// each concurrency level and keeps the best rate.
func measureBareHTTP(ctx context.Context, o *options) (Limit, error) {
	h, err := startHello(ctx)
	if err != nil {
		return Limit{}, err
	}
	defer h.stop()
	best := Limit{Key: limitBareHTTP, Name: "bare net/http"}
	meters := map[string]CPUSource{"gen": selfCPU{}, "server": procCPU{pid: h.PID, hz: clockTicks()}}
	for _, c := range o.levels {
		client := newClient(c, nil)
		res, err := RunLoad(ctx, LoadConfig{Concurrency: c, Duration: o.limitsFor, Warmup: o.limitsFor / 4, Meters: meters}, helloWorker(client, h.URL))
		client.CloseIdleConnections()
		if err != nil {
			return Limit{}, err
		}
		if res.Errors > 0 {
			return Limit{}, fmt.Errorf("bare http server: %d errors, first: %s", res.Errors, res.FirstErr)
		}
		l := measured(best.Key, best.Name, int64(res.Ops), res.Elapsed, res.CPU["gen"]+res.CPU["server"])
		if l.Rate > best.Rate {
			best = l
		}
	}
	return best, nil
}

// runScenario runs sc at concurrency c and turns the load result into a
// table row; a scenario that cannot run becomes an n/a row.
func runScenario(ctx context.Context, sc scenario, c int, o *options, w *world, env *scenarioEnv,
	meters map[string]CPUSource, log io.Writer) ScenarioResult {
	out := ScenarioResult{Name: sc.name, Concurrency: c, LimitKey: sc.limit, Target: sc.target, ReqsPerOp: sc.reqsPerOp,
		AuthdCPUms: -1, PostgresCPUms: -1, GenCPUms: -1}
	if reason := env.f.missing(sc.needs...); reason != "" {
		out.NA = reason
		return out
	}
	if err := w.alive(); err != nil {
		out.NA = err.Error()
		return out
	}
	fmt.Fprintf(log, "%-20s c=%-3d …", sc.name, c)
	env.client = newClient(c, nil)
	defer env.client.CloseIdleConnections()
	env.svcToken = ""
	if env.f.missing(needSvc) == "" {
		tok, err := env.f.serviceToken(ctx, env.client, "credits:charge")
		if err != nil {
			out.NA = "service token: " + err.Error()
			fmt.Fprintln(log, " n/a")
			return out
		}
		env.svcToken = tok
	}
	if w.authdPID > 0 {
		_ = resetPeakRSS(w.authdPID)
	}
	var profiled func() error
	profileBase := filepath.Join(o.profileDir, fmt.Sprintf("%s-%s-c%d", w.label, sc.name, c))
	if o.profileDir != "" && w.pprofURL != "" {
		profiled = profileAuthd(ctx, w.pprofURL, profileBase+".pprof", o.warmup, o.duration)
	}
	wal, _ := meters[walMeterName].(*walMeter)
	if w.statements && wal != nil {
		// Counted from the measured part's start, as the meters are.
		t := time.AfterFunc(o.warmup, func() { _ = wal.resetStatements(ctx) })
		defer t.Stop()
	}
	res, err := RunLoad(ctx, LoadConfig{Concurrency: c, Duration: o.duration, Warmup: o.warmup, Meters: meters}, sc.worker(env))
	if profiled != nil {
		if perr := profiled(); perr != nil {
			fmt.Fprintf(log, " (%v)", perr)
		}
	}
	if err == nil && w.statements && wal != nil {
		if serr := wal.writeStatements(ctx, profileBase+".statements.txt", res.Ops); serr != nil {
			fmt.Fprintf(log, " (pg_stat_statements: %v)", serr)
		}
	}
	if err != nil {
		out.NA = err.Error()
		fmt.Fprintln(log, " n/a:", err)
		return out
	}
	out.Rate = res.Rate()
	out.Ops, out.Errors, out.FirstError, out.MeterErr = res.Ops, res.Errors, res.FirstErr, res.MeterErr
	out.P50ms = msOf(res.Hist.Quantile(0.50))
	out.P90ms = msOf(res.Hist.Quantile(0.90))
	out.P99ms = msOf(res.Hist.Quantile(0.99))
	for name, dst := range map[string]*float64{"authd": &out.AuthdCPUms, "postgres": &out.PostgresCPUms, "gen": &out.GenCPUms} {
		if d, ok := res.CPUPerOp(name); ok {
			*dst = msOf(d)
		}
	}
	if d, ok := res.CPUPerOp(walMeterName); ok {
		out.WALBytesPerOp = float64(d.Nanoseconds()) // the WAL meter counts bytes as nanoseconds
	}
	if out.AuthdCPUms > 0 && out.PostgresCPUms >= 0 && out.GenCPUms >= 0 {
		out.CPURate = float64(runtime.NumCPU()) * 1000 / (out.AuthdCPUms + out.PostgresCPUms + out.GenCPUms)
	}
	if w.authdPID > 0 {
		if rss, err := peakRSS(w.authdPID); err == nil {
			out.AuthdPeakRSS = rss
		}
	}
	fmt.Fprintf(log, " %8s ops/s, p99 %s ms, %d errors\n", formatRate(out.Rate), ms(out.P99ms), out.Errors)
	return out
}

func msOf(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// fillRatios sets each scenario's ratio to its limit, and the relative
// target of login (90% of the bcrypt limit).
func (r *Report) fillRatios() {
	r.fillRatiosOf(r.Scenarios)
	if r.Empty != nil {
		r.fillRatiosOf(r.Empty.Scenarios)
	}
}

func (r *Report) fillRatiosOf(all []ScenarioResult) {
	for i := range all {
		s := &all[i]
		l, ok := r.limit(s.LimitKey)
		if !ok || l.Rate <= 0 || s.NA != "" {
			continue
		}
		// CPU-bound rates on both sides: other load on the machine slows
		// the wall clock of both alike; on a quiet machine the two agree.
		rate := s.Rate
		if s.CPURate > 0 {
			rate = s.CPURate
		}
		s.LimitRatio = rate / l.Rate
		if s.Name == "login" {
			s.Target = 0.9 * l.Rate
		}
	}
}

// renderJSON prints the table of a report written by -json.
func renderJSON(path string, w io.Writer) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	rep.fillRatios()
	rep.WriteTable(w)
	return nil
}
