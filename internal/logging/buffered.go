package logging

import (
	"sync"
	"time"

	"go.uber.org/zap/zapcore"
)

// Buffering of stderr (see Options.Output). Under load, one write(2) per
// access line is a measurable share of a cheap request's CPU; lines are
// gathered instead and written together. What a crash can cost is bounded:
//   - a line waits at most FlushInterval (or until BufferSize bytes are
//     waiting) before it is written, so a process killed outright (SIGKILL,
//     OOM, a fatal runtime error) loses at most the Debug/Info lines of its
//     last FlushInterval;
//   - a Warn line or worse (5xx and 503 access lines, recovered panics,
//     errors) is written at once, together with every line before it, so
//     the lines that explain a failure are never the ones held back;
//   - Sync (authd calls it on shutdown; zap calls it before Panic/Fatal
//     exits) writes everything.
const (
	FlushInterval = 10 * time.Millisecond
	BufferSize    = 64 << 10
)

// bufferedWriter gathers lines for out; it is safe for concurrent use and
// keeps the order of lines.
type bufferedWriter struct {
	out      zapcore.WriteSyncer
	interval time.Duration
	size     int

	mu    sync.Mutex
	buf   []byte
	timer *time.Timer // fires flushTimer; pending while armed
	armed bool
}

func newBufferedWriter(out zapcore.WriteSyncer, interval time.Duration, size int) *bufferedWriter {
	w := &bufferedWriter{out: out, interval: interval, size: size, buf: make([]byte, 0, size)}
	w.timer = time.AfterFunc(time.Hour, w.flushTimer)
	w.timer.Stop()
	return w
}

// Write queues p (one encoded entry) and makes sure it is written within
// the interval.
func (w *bufferedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf)+len(p) > w.size {
		if err := w.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) >= w.size {
			return w.out.Write(p)
		}
	}
	w.buf = append(w.buf, p...)
	if !w.armed {
		w.armed = true
		w.timer.Reset(w.interval)
	}
	return len(p), nil
}

// flush writes what is waiting, without syncing out.
func (w *bufferedWriter) flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked()
}

func (w *bufferedWriter) flushLocked() error {
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.out.Write(w.buf)
	// On error the lines are dropped, as an unbuffered write would have
	// dropped them; the error goes to the caller (zap's ErrorOutput).
	w.buf = w.buf[:0]
	return err
}

// flushTimer runs FlushInterval after the first line that found the buffer
// empty. A fire that raced with an earlier flush only flushes early.
func (w *bufferedWriter) flushTimer() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed = false
	_ = w.flushLocked()
}

// Sync writes what is waiting and syncs out.
func (w *bufferedWriter) Sync() error {
	if err := w.flush(); err != nil {
		return err
	}
	return w.out.Sync()
}

// flushOnWarn is a core writing to a bufferedWriter that flushes it after
// every entry at Warn level or worse.
type flushOnWarn struct {
	zapcore.Core
	w *bufferedWriter
}

func (c flushOnWarn) With(fields []zapcore.Field) zapcore.Core {
	return flushOnWarn{Core: c.Core.With(fields), w: c.w}
}

func (c flushOnWarn) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(ent.Level) {
		return ce.AddCore(ent, c)
	}
	return ce
}

func (c flushOnWarn) Write(ent zapcore.Entry, fields []zapcore.Field) error {
	err := c.Core.Write(ent, fields)
	if ent.Level >= zapcore.WarnLevel {
		if ferr := c.w.flush(); err == nil {
			err = ferr
		}
	}
	return err
}

// Level reports the wrapped core's level (zapcore.LevelOf asks).
func (c flushOnWarn) Level() zapcore.Level { return zapcore.LevelOf(c.Core) }
