package reliability

import (
	"bufio"
	"context"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
)

// LogstashPeer is a fake Logstash TCP input on a fixed loopback port. It
// counts complete JSON lines. Modes: Healthy reads everything; Hang accepts
// and never reads (with a tiny receive buffer, so the sender's buffers fill
// quickly); Drop reads DropAfter lines per connection, then closes it; Down
// closes the listener (connection refused). Leaving Hang reads everything
// the held connections had buffered, so nothing the sender wrote goes
// unseen: what is not received was dropped by the sender.
type LogstashPeer struct {
	Addr      string
	DropAfter int
	mu        sync.Mutex
	mode      Mode
	ln        net.Listener
	held      []heldConn
	open      map[net.Conn]bool
	lines     atomic.Int64
	cuts      atomic.Int64
	wg        sync.WaitGroup
}

// NewLogstashPeer starts a healthy peer.
func NewLogstashPeer() (*LogstashPeer, error) {
	p := &LogstashPeer{DropAfter: 5, open: map[net.Conn]bool{}}
	if err := p.listen("127.0.0.1:0"); err != nil {
		return nil, err
	}
	p.Addr = p.ln.Addr().String()
	return p, nil
}

func (p *LogstashPeer) listen(addr string) error {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			// Accepted sockets inherit this; a small window lets Hang bite fast.
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return err
	}
	p.ln = ln
	p.wg.Add(1)
	go p.accept(ln)
	return nil
}

func (p *LogstashPeer) accept(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.open[c] = true
		p.mu.Unlock()
		p.wg.Add(1)
		go func() { defer p.wg.Done(); p.read(c) }()
	}
}

// read counts complete lines until EOF, obeying mode changes between lines:
// Hang parks the connection unread, Drop hangs up after DropAfter lines.
func (p *LogstashPeer) read(c net.Conn) {
	r := bufio.NewReaderSize(c, 64<<10)
	n := 0
	for {
		p.mu.Lock()
		mode := p.mode
		if mode == Hang {
			p.held = append(p.held, heldConn{c, r})
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		if mode == Drop && n >= p.DropAfter {
			p.cuts.Add(1)
			p.forget(c)
			return
		}
		line, err := r.ReadSlice('\n')
		for err == bufio.ErrBufferFull { // longer than the buffer: consume the rest
			line, err = r.ReadSlice('\n')
			line = []byte{'{'}
		}
		if err != nil {
			p.forget(c) // a partial last line is not a line
			return
		}
		if len(line) > 0 && line[0] == '{' {
			p.lines.Add(1)
		}
		if mode == Drop {
			n++
		}
	}
}

func (p *LogstashPeer) forget(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.open, c)
	p.mu.Unlock()
}

// SetMode switches behaviour, for open connections too.
func (p *LogstashPeer) SetMode(m Mode) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	prev := p.mode
	p.mode = m
	if prev == Hang && m != Hang {
		// Read what the held connections buffered, even if the sender has
		// given up on them since.
		for _, h := range p.held {
			p.wg.Add(1)
			go func() { defer p.wg.Done(); p.resume(h) }()
		}
		p.held = nil
	}
	switch {
	case m == Down && prev != Down:
		// The peer process is gone: listener and connections alike.
		for c := range p.open {
			c.Close()
			p.cuts.Add(1)
		}
		return p.ln.Close()
	case m != Down && prev == Down:
		return p.listen(p.Addr)
	}
	return nil
}

func (p *LogstashPeer) resume(h heldConn) {
	for {
		line, err := h.r.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull {
			break
		}
		if err == nil && len(line) > 0 && line[0] == '{' {
			p.lines.Add(1)
		}
	}
	p.forget(h.c)
}

type heldConn struct {
	c net.Conn
	r *bufio.Reader
}

// Lines is how many complete lines arrived.
func (p *LogstashPeer) Lines() int64 { return p.lines.Load() }

// Cuts is how many open connections the peer hung up on (Down, Drop).
func (p *LogstashPeer) Cuts() int64 { return p.cuts.Load() }

// Close stops the peer.
func (p *LogstashPeer) Close() {
	p.mu.Lock()
	if p.mode != Down {
		p.ln.Close()
	}
	for c := range p.open {
		c.Close()
	}
	p.held = nil
	p.mu.Unlock()
}
