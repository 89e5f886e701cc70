package logging

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// LogstashSink ships newline-delimited JSON log lines to a Logstash TCP input.
// Write never blocks: lines go to a bounded queue and one goroutine writes
// them, reconnecting with backoff. When the queue is full (Logstash down or
// slow) a line is dropped and counted; so is every line of a write that
// fails. Dropped() + Sent() accounts for every line written. Logstash's TCP
// input sends no acknowledgements, so a write that reached the socket just
// as the peer died counts as sent and is lost with the peer: at most the
// write in flight at each hang-up.
type LogstashSink struct {
	addr    string
	queue   chan []byte
	dropped atomic.Uint64
	sent    atomic.Uint64
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)

	ctx      context.Context // cancelled by Close
	cancel   context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once
}

// NewLogstashSink starts a sink for addr (host:port) with room for queueLen
// lines (0 = 8192).
func NewLogstashSink(addr string, queueLen int) *LogstashSink {
	if queueLen <= 0 {
		queueLen = 8192
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &LogstashSink{
		addr: addr, queue: make(chan []byte, queueLen), ctx: ctx, cancel: cancel, done: make(chan struct{}),
		dial: (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
	}
	go s.run()
	return s
}

// Write queues one encoded line; it never blocks. zap calls it once per entry.
func (s *LogstashSink) Write(p []byte) (int, error) {
	if s.ctx.Err() != nil {
		s.dropped.Add(1)
		return len(p), nil
	}
	line := make([]byte, len(p))
	copy(line, p)
	select {
	case s.queue <- line:
	default:
		s.dropped.Add(1)
	}
	return len(p), nil
}

// Sync is a no-op: flushing to the network must not stall the caller.
func (s *LogstashSink) Sync() error { return nil }

// Dropped is how many lines were lost.
func (s *LogstashSink) Dropped() uint64 { return s.dropped.Load() }

// Sent is how many lines were written to a connection.
func (s *LogstashSink) Sent() uint64 { return s.sent.Load() }

// Close stops the sink; lines still queued are counted as dropped.
func (s *LogstashSink) Close() error {
	s.stopOnce.Do(func() {
		s.cancel()
		<-s.done
		s.dropped.Add(uint64(len(s.queue)))
	})
	return nil
}

func (s *LogstashSink) run() {
	defer close(s.done)
	backoff := 100 * time.Millisecond
	var conn net.Conn
	var w *bufio.Writer
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for {
		var line []byte
		select {
		case <-s.ctx.Done():
			return
		case line = <-s.queue:
		}
		if conn != nil && peerClosed(conn) {
			conn.Close()
			conn = nil
		}
		if conn == nil {
			c, err := s.dial(s.ctx, "tcp", s.addr)
			if err != nil {
				// Disconnected: this line is lost; wait before dialling again.
				// Meanwhile the queue fills and Write counts its drops.
				s.dropped.Add(1)
				select {
				case <-s.ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, 5*time.Second)
				continue
			}
			conn, w = c, bufio.NewWriterSize(c, 64<<10)
			backoff = 100 * time.Millisecond
		}
		if err := s.write(conn, w, line); err != nil {
			conn.Close()
			conn = nil
		}
	}
}

// peerClosed reports whether the peer has hung up. Logstash never writes to
// us, so a read that does not time out means EOF or a reset. Without this
// check the first batch written after the peer closed would "succeed" into
// the dead socket and be lost uncounted. The probe waits at most 1ms, on
// the sink's goroutine, never a request's.
func peerClosed(conn net.Conn) bool {
	_ = conn.SetReadDeadline(time.Now().Add(time.Millisecond))
	var b [1]byte
	_, err := conn.Read(b[:])
	var ne net.Error
	return !errors.As(err, &ne) || !ne.Timeout()
}

// write sends line and every line already queued behind it with one flush. A
// write deadline keeps a peer that never reads from wedging the sink. On
// error every line of the batch is counted as dropped.
func (s *LogstashSink) write(conn net.Conn, w *bufio.Writer, line []byte) error {
	_ = conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
	n := uint64(1)
	_, err := w.Write(line)
	for more := err == nil; more; {
		select {
		case l := <-s.queue:
			n++
			if _, err = w.Write(l); err != nil {
				more = false
			}
		default:
			more = false
		}
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		w.Reset(conn)
		s.dropped.Add(n)
		return err
	}
	s.sent.Add(n)
	return nil
}
