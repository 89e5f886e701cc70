package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// measureStartups starts authd n times on one world (the empty one when
// dataDir is "", else the cached production-size world) and prints, for
// each start, the time from exec to the first /readyz 200 and authd's own
// start-up figure from its "authd listening" log line; then min, median
// and max. The starts of startWorld (the first creates the signing keys on
// a new database) are not counted.
func measureStartups(ctx context.Context, o *options, label, dataDir string, n int, out, log io.Writer) error {
	w, err := startWorld(ctx, o.worldConfig(dataDir, log))
	if err != nil {
		return err
	}
	defer w.stop()
	logf, err := os.OpenFile(w.logPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	defer logf.Close()
	hz := clockTicks()
	pg := treeCPU{pidFile: postmasterPidFile(w.pgData), hz: hz}
	var ready []time.Duration
	for i := range n {
		w.stopAuthd()
		pg0, pgErr := pg.CPU()
		if err := w.startAuthd(ctx, logf); err != nil {
			return err
		}
		// CPU from exec to ready: authd's whole life so far, and what
		// Postgres spent meanwhile (the connections authd opened, its
		// queries). Unlike the wall clock, other load on the machine does
		// not change these.
		cpu := "?"
		if a, err := (procCPU{pid: w.authdPID, hz: hz}).CPU(); err == nil {
			cpu = "authd " + a.Round(time.Millisecond).String()
			if pg1, err := pg.CPU(); err == nil && pgErr == nil {
				cpu += ", Postgres " + (pg1 - pg0).Round(time.Millisecond).String()
			}
		}
		ready = append(ready, w.startup)
		fmt.Fprintf(out, "%s start %d: ready %s after exec (authd's log: start-up %s; CPU until ready: %s)\n", label, i+1,
			w.startup.Round(time.Millisecond), lastLoggedStartup(w.logPath), cpu)
	}
	slices.Sort(ready)
	fmt.Fprintf(out, "%s: start-up to ready over %d starts: min %s, median %s, max %s (target ≤ 300 ms)\n", label, n,
		ready[0].Round(time.Millisecond), ready[len(ready)/2].Round(time.Millisecond), ready[len(ready)-1].Round(time.Millisecond))
	return nil
}

// lastLoggedStartup is the startup field of the last "authd listening" line
// of authd's JSON log, "?" when there is none.
func lastLoggedStartup(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "?"
	}
	defer f.Close()
	last := "?"
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, `"authd listening"`) {
			continue
		}
		var v struct {
			Startup any `json:"startup"`
		}
		if json.Unmarshal([]byte(line), &v) == nil && v.Startup != nil {
			switch s := v.Startup.(type) {
			case float64: // zap's default duration encoding: seconds
				last = time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
			default:
				last = fmt.Sprint(s)
			}
		}
	}
	return last
}
