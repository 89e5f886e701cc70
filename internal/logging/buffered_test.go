package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// sink records what reaches the file: the bytes and how many writes.
type sink struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
	syncs  int
}

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	return s.b.Write(p)
}

func (s *sink) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.syncs++
	return nil
}

func (s *sink) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Split(strings.TrimSuffix(s.b.String(), "\n"), "\n")
}

func (s *sink) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}

// bufferedLogger is New's stderr logger, on out.
func bufferedLogger(out *sink, interval time.Duration, size int) *zap.Logger {
	bw := newBufferedWriter(out, interval, size)
	core := flushOnWarn{Core: zapcore.NewCore(zapcore.NewJSONEncoder(JSONEncoderConfig()), bw, zapcore.InfoLevel), w: bw}
	return zap.New(core)
}

func TestBufferedWriter_InfoWrittenWithinInterval(t *testing.T) {
	out := &sink{}
	log := bufferedLogger(out, FlushInterval, BufferSize)
	start := time.Now()
	log.Info("request", zap.Int("n", 1))
	for out.len() == 0 {
		if time.Since(start) > time.Second {
			t.Fatalf("an info line was not written within 1 s (interval %v)", FlushInterval)
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("written after %v", time.Since(start))
}

// A Warn line or worse is written before Warn returns, after every line
// logged before it.
func TestBufferedWriter_WarnWritesEverythingAtOnce(t *testing.T) {
	out := &sink{}
	log := bufferedLogger(out, time.Hour, BufferSize) // only Warn or Sync can write
	log.Info("first")
	log.Info("second")
	if out.len() != 0 {
		t.Fatal("info lines written before the interval")
	}
	log.Warn("outage")
	got := out.lines()
	if len(got) != 3 || !strings.Contains(got[0], "first") || !strings.Contains(got[1], "second") || !strings.Contains(got[2], "outage") {
		t.Fatalf("after Warn returned the file holds %q; want first, second, outage", got)
	}
	log.Info("third")
	if err := log.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := out.lines(); len(got) != 4 || !strings.Contains(got[3], "third") {
		t.Fatalf("after Sync the file holds %q", got)
	}
	if out.syncs != 1 {
		t.Errorf("Sync reached the file %d times, want 1", out.syncs)
	}
}

// Lines beyond the buffer's size are written without waiting for the timer.
func TestBufferedWriter_FullBufferWrites(t *testing.T) {
	out := &sink{}
	log := bufferedLogger(out, time.Hour, 1024)
	for i := range 100 {
		log.Info("line", zap.Int("i", i))
	}
	if n := out.len(); n == 0 || n > 100*100 {
		t.Fatalf("%d bytes written with a 1 KiB buffer and no flush", n)
	}
	log.Info(strings.Repeat("x", 2048)) // larger than the buffer: written whole
	if !strings.Contains(out.lines()[len(out.lines())-1], strings.Repeat("x", 2048)) {
		t.Fatal("a line larger than the buffer was not written at once")
	}
}

// Many goroutines logging at once: every line arrives once, whole, in each
// goroutine's order, in far fewer writes than lines.
func TestBufferedWriter_ConcurrentLinesWholeAndOrdered(t *testing.T) {
	out := &sink{}
	log := bufferedLogger(out, FlushInterval, BufferSize)
	const goroutines, each = 16, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				lvl := zapcore.InfoLevel
				if i%97 == 0 {
					lvl = zapcore.WarnLevel
				}
				log.Check(lvl, "request").Write(zap.Int("g", g), zap.Int("i", i))
			}
		}()
	}
	wg.Wait()
	if err := log.Sync(); err != nil {
		t.Fatal(err)
	}
	next := make([]int, goroutines)
	lines := out.lines()
	for _, l := range lines {
		var e struct{ G, I int }
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("line %q is not whole JSON: %v", l, err)
		}
		if e.I != next[e.G] {
			t.Fatalf("goroutine %d: line %d after %d", e.G, e.I, next[e.G]-1)
		}
		next[e.G]++
	}
	if len(lines) != goroutines*each {
		t.Fatalf("%d lines, want %d", len(lines), goroutines*each)
	}
	if out.writes >= len(lines)/2 {
		t.Errorf("%d writes for %d lines: nothing was gathered", out.writes, len(lines))
	}
	t.Logf("%d lines in %d writes", len(lines), out.writes)
}
