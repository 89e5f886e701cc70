package main

import (
	"encoding/binary"
	"os"
	"testing"
	"time"
)

func TestParseStat_OK(t *testing.T) {
	// A command name with spaces and parentheses, as postgres backends have.
	line := "4242 (postgres: authd authd 127.0.0.1(5432) idle) S 4200 4200 4200 0 -1 4194560 512 0 0 0 1234 567 89 10 20 0 1 0 100 0 0\n"
	st, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.PPID != 4200 || st.UTime != 1234 || st.STime != 567 || st.CUTime != 89 || st.CSTime != 10 {
		t.Errorf("parsed %+v", st)
	}
}

func TestParseStat_Errors(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"ErrNoCommand", "4242 postgres S 1 2 3"},
		{"ErrTooFewFields", "4242 (x) S 1 2 3"},
		{"ErrNotANumber", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 abc 1 1 1 20 0 1 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseStat([]byte(tc.in)); err == nil {
				t.Errorf("no error for %q", tc.in)
			}
		})
	}
}

func TestParseStat_OwnProcess(t *testing.T) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	st, err := parseStat(b)
	if err != nil {
		t.Fatal(err)
	}
	if st.PPID != os.Getppid() {
		t.Errorf("ppid %d, want %d", st.PPID, os.Getppid())
	}
}

func TestParseAuxvClkTck(t *testing.T) {
	aux := make([]byte, 0, 64)
	put := func(k, v uint64) {
		aux = binary.NativeEndian.AppendUint64(aux, k)
		aux = binary.NativeEndian.AppendUint64(aux, v)
	}
	put(6, 4096) // AT_PAGESZ
	put(17, 250) // AT_CLKTCK
	put(0, 0)
	if got := parseAuxvClkTck(aux); got != 250 {
		t.Errorf("got %d, want 250", got)
	}
	if got := parseAuxvClkTck(nil); got != 100 {
		t.Errorf("empty auxv: got %d, want the default 100", got)
	}
	if hz := clockTicks(); hz == 0 {
		t.Error("clockTicks returned 0")
	}
}

func TestTicksToDuration(t *testing.T) {
	if got := ticksToDuration(250, 100); got != 2500*time.Millisecond {
		t.Errorf("got %s", got)
	}
}

func TestParseVmHWM(t *testing.T) {
	status := "Name:\tauthd\nVmPeak:\t 1000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t 40000 kB\n"
	got, err := parseVmHWM([]byte(status))
	if err != nil || got != 50<<20 {
		t.Errorf("got %d, %v; want 50 MiB", got, err)
	}
	if _, err := parseVmHWM([]byte("Name:\tx\n")); err == nil {
		t.Error("no error without VmHWM")
	}
	if rss, err := peakRSS(os.Getpid()); err != nil || rss <= 0 {
		t.Errorf("own peak RSS %d, %v", rss, err)
	}
}

func TestProcCPU_Monotonic(t *testing.T) {
	p := procCPU{pid: os.Getpid(), hz: clockTicks()}
	a, err := p.CPU()
	if err != nil {
		t.Fatal(err)
	}
	// Burn a little CPU so the second reading may move.
	deadline := time.Now().Add(30 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
	}
	b, err := p.CPU()
	if err != nil || b < a {
		t.Errorf("cpu went from %s to %s (%v)", a, b, err)
	}
	if s, err := (selfCPU{}).CPU(); err != nil || s <= 0 {
		t.Errorf("self cpu %s, %v", s, err)
	}
}

func TestTreeCPU_CountsChildren(t *testing.T) {
	// This test process stands in for a postmaster: its pid file names us.
	dir := t.TempDir()
	pidFile := postmasterPidFile(dir)
	if err := os.WriteFile(pidFile, []byte(itoa(os.Getpid())+"\n/data\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Own CPU first: the tree, read later, can only have grown.
	own, err := (procCPU{pid: os.Getpid(), hz: clockTicks()}).CPU()
	if err != nil {
		t.Fatal(err)
	}
	tree, err := (treeCPU{pidFile: pidFile, hz: clockTicks()}).CPU()
	if err != nil {
		t.Fatal(err)
	}
	if tree < own {
		t.Errorf("tree cpu %s < own cpu %s", tree, own)
	}
	if _, err := (treeCPU{pidFile: dir + "/missing", hz: 100}).CPU(); err == nil {
		t.Error("no error for a missing pid file")
	}
}
