package ledger_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authd/authd/ledger"
	"github.com/authd/authd/storage/storagetest"
)

// BenchmarkSpend measures the spend path end to end against Postgres:
// lock, reference check, guarded update, insert with entries, audit, commit.
//
//	go test -run '^$' -bench Spend -benchtime 3s ./ledger/
func BenchmarkSpend(b *testing.B) {
	b.Run("ManyUsers", func(b *testing.B) { benchSpend(b, 1000, 8) })
	b.Run("HotAccount", func(b *testing.B) { benchSpend(b, 1, 8) })
	b.Run("Serial", func(b *testing.B) { benchSpend(b, 1, 0) })
}

// benchSpend spends 1 credit at a time spread over users accounts, from
// parallelism × GOMAXPROCS goroutines (0: one goroutine).
func benchSpend(b *testing.B, users, parallelism int) {
	db := storagetest.NewDB(b)
	l := ledger.New(db.Pool, nil)
	ctx := context.Background()
	rows, err := db.Pool.Query(ctx, `INSERT INTO users (email, password_hash)
		SELECT 'bench' || g || '@example.test', 'x' FROM generate_series(1, $1) g RETURNING id::text`, users)
	if err != nil {
		b.Fatal(err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		MustGrant(b, l, id, 1<<40)
	}
	var n atomic.Int64
	cpu := startCPUMeter(b, db.Pool)
	b.ResetTimer()
	if parallelism == 0 {
		for i := range b.N {
			if _, err := l.Spend(ctx, ledger.Posting{UserID: ids[i%len(ids)], Amount: 1, Reference: fmt.Sprintf("b-%d", i), Origin: testOrigin}); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		cpu.report(b)
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "spends/s")
		return
	}
	b.SetParallelism(parallelism) // the test pool has 32 connections
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			if _, err := l.Spend(ctx, ledger.Posting{UserID: ids[int(i)%len(ids)], Amount: 1,
				Reference: fmt.Sprintf("b-%d", i), Origin: testOrigin}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	cpu.report(b)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "spends/s")
}

// cpuMeter measures the CPU time used by this process and by the test's
// Postgres cluster (its postmaster, live children and reaped children). On
// a few shared cores wall time per spend swings with the neighbours' load;
// CPU time per spend is the cost that a change moves.
type cpuMeter struct {
	postmaster int // 0: the server is not local, nothing is reported
	start      time.Duration
}

func startCPUMeter(b *testing.B, pool *pgxpool.Pool) *cpuMeter {
	b.Helper()
	var backend int
	if err := pool.QueryRow(context.Background(), `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		b.Fatal(err)
	}
	m := &cpuMeter{}
	if f, err := procStat(backend); err == nil {
		m.postmaster, _ = strconv.Atoi(f[3])
	}
	m.start = m.used()
	return m
}

// used is the CPU time used so far, or 0 if the server is not local.
func (m *cpuMeter) used() time.Duration {
	if m.postmaster == 0 {
		return 0
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	total := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	ticks := 0
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		f, err := procStat(pid)
		if err != nil {
			continue
		}
		ppid, _ := strconv.Atoi(f[3])
		if pid != m.postmaster && ppid != m.postmaster {
			continue
		}
		last := 15 // utime, stime
		if pid == m.postmaster {
			last = 17 // and cutime, cstime: its reaped children
		}
		for _, v := range f[13:last] {
			n, _ := strconv.Atoi(v)
			ticks += n
		}
	}
	return total + time.Duration(ticks)*time.Second/100 // USER_HZ
}

func (m *cpuMeter) report(b *testing.B) {
	if m.postmaster != 0 {
		b.ReportMetric(float64(m.used()-m.start)/float64(b.N), "cpu-ns/op")
	}
}

// procStat returns the fields of /proc/pid/stat (the command, which may hold
// spaces, is skipped: fields[2] is the state).
func procStat(pid int) ([]string, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := strings.LastIndexByte(string(raw), ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no command", pid)
	}
	return append([]string{"", ""}, strings.Fields(string(raw[i+1:]))...), nil
}
