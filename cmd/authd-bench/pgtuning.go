package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// pgTuning is how the bench configures its private Postgres, the same on
// both worlds. By default it is configured as a production database server
// would be (docs/operating.md, "PostgreSQL settings"); -pg-defaults runs the
// stock settings instead, which is what a measurement of "authd on an
// untuned Postgres" means.
//
// Why it matters at production size and not on the empty world: with
// Postgres' stock 128 MB of shared_buffers, the token, user and ledger
// indexes of a production-size database (gigabytes) do not stay in
// Postgres' cache, so every key probe that is a hit on the empty world reads
// a page through the kernel; and the first change to each page after a
// checkpoint logs the whole 8 KB page, which compression makes a fraction of
// that. Neither changes what is durable: fsync, synchronous_commit and
// full_page_writes stay on.
type pgTuning struct {
	Name     string   `json:"name"`
	Settings []string `json:"settings"`
}

// productionTuning follows Postgres' own guidance for a dedicated server:
// shared_buffers a quarter of the memory, effective_cache_size half of it;
// WAL full-page images compressed; max_wal_size large enough that
// checkpoints come from checkpoint_timeout (5 min) and not from WAL volume
// during a burst.
func productionTuning(memBytes int64) pgTuning {
	mb := memBytes >> 20
	return pgTuning{Name: "production", Settings: []string{
		"shared_buffers=" + strconv.FormatInt(max(128, mb/4), 10) + "MB",
		"effective_cache_size=" + strconv.FormatInt(max(256, mb/2), 10) + "MB",
		"wal_compression=lz4",
		"max_wal_size=4GB",
	}}
}

// stockTuning is Postgres' defaults (-pg-defaults).
func stockTuning() pgTuning { return pgTuning{Name: "stock defaults"} }

func (t pgTuning) String() string {
	if len(t.Settings) == 0 {
		return t.Name
	}
	return t.Name + " (" + strings.Join(t.Settings, ", ") + ")"
}

// memTotal is the machine's memory, from /proc/meminfo.
func memTotal() (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != "MemTotal" {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/meminfo: MemTotal %q: %w", v, err)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("/proc/meminfo: no MemTotal")
}

// tuningFor picks the bench's Postgres configuration from the flags.
func tuningFor(o *options) (pgTuning, error) {
	if o.pgDefaults {
		return stockTuning(), nil
	}
	mem, err := memTotal()
	if err != nil {
		return pgTuning{}, err
	}
	return productionTuning(mem), nil
}
