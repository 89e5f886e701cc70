package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// settle brings Postgres to the same state before every scenario: VACUUM
// (ANALYZE) clears the dead rows and stale statistics the previous scenario
// left, and CHECKPOINT writes its dirty pages. Without it a scenario pays for
// its predecessors' autovacuum and for whichever periodic checkpoint
// (checkpoint_timeout, 5 min) happens to fall into it: the hot-account
// spends once ran at half speed in the full run and at full speed alone.
// pgbench vacuums before each run for the same reason.
//
// It returns Postgres' CPU time spent settling, which belongs to the
// scenario that made the mess (reported as its housekeeping, see
// ScenarioResult.HousekeepingPgCPUms).
func settle(ctx context.Context, dbURL string, pg CPUSource) (time.Duration, error) {
	var before time.Duration
	if pg != nil {
		before, _ = pg.CPU()
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, fmt.Errorf("settle: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, stmt := range []string{"VACUUM (ANALYZE)", "CHECKPOINT"} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return 0, fmt.Errorf("settle: %s: %w", stmt, err)
		}
	}
	if pg == nil {
		return 0, nil
	}
	after, err := pg.CPU()
	if err != nil {
		return 0, err
	}
	return after - before, nil
}
