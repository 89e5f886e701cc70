package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procTimes is one process's CPU time from /proc/<pid>/stat, in clock ticks.
type procTimes struct {
	PPID           int
	UTime, STime   uint64 // the process itself
	CUTime, CSTime uint64 // its waited-for children (exited Postgres backends)
}

// parseStat parses the contents of /proc/<pid>/stat. The command name is in
// parentheses and may itself contain spaces and parentheses, so fields are
// counted from the last ')'.
func parseStat(b []byte) (procTimes, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return procTimes{}, errors.New("procstat: malformed stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, so f[11].
	if len(f) < 15 {
		return procTimes{}, fmt.Errorf("procstat: malformed stat: %d fields after the command name", len(f))
	}
	var t procTimes
	var err error
	num := func(s string) uint64 {
		v, e := strconv.ParseUint(s, 10, 64)
		if e != nil && err == nil {
			err = fmt.Errorf("procstat: malformed stat field %q: %w", s, e)
		}
		return v
	}
	t.PPID = int(num(f[1]))
	t.UTime, t.STime = num(f[11]), num(f[12])
	t.CUTime, t.CSTime = num(f[13]), num(f[14])
	return t, err
}

func readStat(pid int) (procTimes, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procTimes{}, err
	}
	return parseStat(b)
}

// clockTicks is the kernel's USER_HZ, read from the auxiliary vector
// (AT_CLKTCK) so no cgo sysconf is needed; 100 is Linux's value everywhere
// in practice.
func clockTicks() uint64 {
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	return parseAuxvClkTck(b)
}

func parseAuxvClkTck(b []byte) uint64 {
	const atClkTck = 17
	for i := 0; i+16 <= len(b); i += 16 {
		k := binary.NativeEndian.Uint64(b[i:])
		v := binary.NativeEndian.Uint64(b[i+8:])
		if k == atClkTck && v > 0 {
			return v
		}
		if k == 0 {
			break
		}
	}
	return 100
}

// ticksToDuration converts clock ticks to time.
func ticksToDuration(ticks, hz uint64) time.Duration {
	return time.Duration(ticks) * time.Second / time.Duration(hz)
}

// CPUSource reports the CPU time used so far by something (a process, a
// process tree, this program).
type CPUSource interface {
	CPU() (time.Duration, error)
}

// procCPU is one process (authd): user + system time.
type procCPU struct {
	pid int
	hz  uint64
}

func (p procCPU) CPU() (time.Duration, error) {
	t, err := readStat(p.pid)
	if err != nil {
		return 0, err
	}
	return ticksToDuration(t.UTime+t.STime, p.hz), nil
}

// treeCPU is a postmaster and its children (the backends and auxiliary
// processes). A backend that exits is folded into the postmaster's
// cutime/cstime when it is reaped, so counting those keeps the total
// monotonic across connection churn.
type treeCPU struct {
	pidFile string // postmaster.pid; the first line is the postmaster's pid
	hz      uint64
}

func (t treeCPU) CPU() (time.Duration, error) {
	b, err := os.ReadFile(t.pidFile)
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	root, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		return 0, fmt.Errorf("procstat: %s: bad pid %q", t.pidFile, line)
	}
	rt, err := readStat(root)
	if err != nil {
		return 0, err
	}
	ticks := rt.UTime + rt.STime + rt.CUTime + rt.CSTime
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == root {
			continue
		}
		st, err := readStat(pid)
		if err != nil || st.PPID != root {
			continue // gone meanwhile, or not ours
		}
		ticks += st.UTime + st.STime
	}
	return ticksToDuration(ticks, t.hz), nil
}

// selfCPU is this program's own CPU time (the load generator).
type selfCPU struct{}

func (selfCPU) CPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// parseVmHWM returns the peak resident set size from /proc/<pid>/status.
func parseVmHWM(status []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != "VmHWM" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("procstat: malformed VmHWM line %q", sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("procstat: malformed VmHWM line %q", sc.Text())
		}
		return kb * 1024, nil
	}
	return 0, errors.New("procstat: no VmHWM in status")
}

// peakRSS returns pid's peak RSS in bytes.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseVmHWM(b)
}

// resetPeakRSS restarts pid's VmHWM from its current RSS (clear_refs 5), so
// each scenario reports its own peak. Unsupported kernels keep the
// lifetime peak, which only overstates.
func resetPeakRSS(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// postmasterPidFile is where a data directory names its postmaster.
func postmasterPidFile(dataDir string) string { return filepath.Join(dataDir, "postmaster.pid") }
