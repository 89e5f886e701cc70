package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/storage"
)

// TestProductionTuning_PostgresRunsIt starts Postgres with the bench's
// production settings and reads each back: a build without lz4, or a
// misspelt setting, fails here and not halfway through a bench run.
func TestProductionTuning_PostgresRunsIt(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	tun := productionTuning(2 << 30)
	want := map[string]string{"shared_buffers": "512MB", "effective_cache_size": "1GB", "wal_compression": "lz4", "max_wal_size": "4GB"}
	if len(tun.Settings) != len(want) {
		t.Fatalf("settings %v, want the %d of %v", tun.Settings, len(want), want)
	}
	ctx := context.Background()
	cl := &storage.Cluster{Dir: filepath.Join(pgDir(t), "pg"), Durable: true, Settings: tun.Settings}
	if err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cl.Stop(context.Background()) }()
	conn, err := pgx.Connect(ctx, cl.URL("authd"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for name, v := range want {
		var got string
		if err := conn.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != v {
			t.Errorf("%s = %s, want %s", name, got, v)
		}
	}
	for _, durable := range []string{"fsync", "synchronous_commit", "full_page_writes"} {
		var got string
		if err := conn.QueryRow(ctx, "SELECT current_setting($1)", durable).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != "on" {
			t.Errorf("%s = %s: the tuned bench must stay durable", durable, got)
		}
	}
	if s := stockTuning().String(); strings.Contains(s, "=") {
		t.Errorf("stock tuning sets something: %s", s)
	}
}
