// Command authd-soak runs the reliability scenarios of package reliability
// at soak sizes against the real authd binary and private PostgreSQL
// clusters, and prints the reliability table the README quotes (`make
// soak`). It exits 1 if any scenario found a broken promise.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/reliability"
	"github.com/authd/authd/storage"
)

func main() {
	only := flag.String("only", "", "comma-separated scenarios to run (db,crash,peers,logstash,replicas,rolling); default all")
	flag.Parse()
	if err := run(*only); err != nil {
		fmt.Fprintln(os.Stderr, "authd-soak:", err)
		os.Exit(1)
	}
}

func run(only string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "authd-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o711); err != nil { // the cluster user must traverse it when we are root
		return err
	}
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	logf("building authd …")
	bin, err := reliability.Build(ctx, dir)
	if err != nil {
		return err
	}
	shared := &storage.Cluster{Dir: filepath.Join(dir, "pg-shared")}
	faulty := &storage.Cluster{Dir: filepath.Join(dir, "pg-faulty")}
	for _, c := range []*storage.Cluster{shared, faulty} {
		logf("starting PostgreSQL in %s …", c.Dir)
		if err := c.Start(ctx); err != nil {
			return err
		}
		defer c.Stop(context.WithoutCancel(ctx))
	}
	if err := storage.Migrate(faulty.URL("authd")); err != nil {
		return err
	}
	newEnv := func(name string) (reliability.Env, error) {
		env := reliability.Env{Bin: bin, Dir: filepath.Join(dir, name), Logf: logf}
		if err := os.MkdirAll(env.Dir, 0o700); err != nil {
			return env, err
		}
		conn, err := pgx.Connect(ctx, shared.URL("authd"))
		if err != nil {
			return env, err
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{"soak_" + name}.Sanitize()); err != nil {
			return env, err
		}
		env.DatabaseURL = shared.URL("soak_" + name)
		return env, storage.Migrate(env.DatabaseURL)
	}

	type scenario struct {
		key string
		run func(env reliability.Env) *reliability.Report
	}
	scenarios := []scenario{
		{"db", func(env reliability.Env) *reliability.Report {
			env.DatabaseURL = faulty.URL("authd")
			return reliability.DBOutage(ctx, env, reliability.DBOutageOptions{Cluster: faulty, Outages: 3, Down: 4 * time.Second, Between: 3 * time.Second, Workers: 2})
		}},
		{"crash", func(env reliability.Env) *reliability.Report {
			return reliability.Crash(ctx, env, reliability.CrashOptions{Kills: 5, Between: 3 * time.Second, Workers: 2, Redelivery: 150 * time.Second})
		}},
		{"peers", func(env reliability.Env) *reliability.Report {
			return reliability.PeerFaults(ctx, env, reliability.PeerOptions{Registrations: 25, Fault: 6 * time.Second})
		}},
		{"logstash", func(env reliability.Env) *reliability.Report {
			return reliability.Logstash(ctx, env, reliability.LogstashOptions{Rounds: 7, Requests: 300, MaxRatio: 1.10, Slack: 2 * time.Millisecond})
		}},
		{"replicas", func(env reliability.Env) *reliability.Report {
			return reliability.Replicas(ctx, env, reliability.ReplicaOptions{Replicas: 3, Spends: 600, Registrations: 120})
		}},
		{"rolling", func(env reliability.Env) *reliability.Report {
			return reliability.Rolling(ctx, env, reliability.RollingOptions{Replicas: 3, Rounds: 3, Between: 2 * time.Second, Workers: 3})
		}},
	}
	started := time.Now()
	var reports []*reliability.Report
	for _, s := range scenarios {
		if only != "" && !strings.Contains(","+only+",", ","+s.key+",") {
			continue
		}
		env, err := newEnv(s.key)
		if err != nil {
			return err
		}
		logf("scenario %s …", s.key)
		rep := s.run(env)
		reports = append(reports, rep)
		logf("scenario %s: %s, %d problem(s)", s.key, rep.Duration.Round(time.Second), len(rep.Problems))
	}
	fmt.Printf("authd reliability soak, %s, %s, total %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), machine(), time.Since(started).Round(time.Second))
	reliability.WriteTable(os.Stdout, reports)
	for _, r := range reports {
		if len(r.Problems) > 0 {
			return fmt.Errorf("%s: %d broken promise(s)", r.Name, len(r.Problems))
		}
	}
	return nil
}

// machine describes where the soak ran.
func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	var si syscall.Sysinfo_t
	mem := ""
	if syscall.Sysinfo(&si) == nil {
		mem = fmt.Sprintf(", %.1f GiB RAM", float64(si.Totalram)*float64(si.Unit)/(1<<30))
	}
	who := ""
	if u, err := user.Current(); err == nil && u.Uid == "0" {
		who = ", as root (PostgreSQL as an unprivileged user)"
	}
	return fmt.Sprintf("%s/%s, %d CPUs (%s)%s, %s%s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpu, mem, runtime.Version(), who)
}
