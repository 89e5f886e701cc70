package ledger_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

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
	b.ResetTimer()
	if parallelism == 0 {
		for i := range b.N {
			if _, err := l.Spend(ctx, ledger.Posting{UserID: ids[i%len(ids)], Amount: 1, Reference: fmt.Sprintf("b-%d", i), Origin: testOrigin}); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
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
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "spends/s")
}
