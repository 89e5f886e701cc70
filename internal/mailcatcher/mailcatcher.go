// Package mailcatcher is the development and test SMTP server: an
// emersion/go-smtp server on loopback that keeps received messages in memory
// and lists them, with clickable links, at /dev/mail. It is never a relay.
package mailcatcher

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"html/template"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one received mail, decoded.
type Message struct {
	ID       int
	From     string
	To       []string
	Subject  string
	Received time.Time
	Text     string
	HTML     string
	Raw      []byte
	// Links are the http(s) URLs in the text part, in order.
	Links []string
	// TLS reports whether the message came over TLS; User is the
	// authenticated user, if any.
	TLS  bool
	User string
}

// Config configures a Catcher.
type Config struct {
	// Addr to listen on; default 127.0.0.1:0 (a free loopback port).
	Addr string
	// TLSConfig, when set, enables STARTTLS (or implicit TLS with ImplicitTLS).
	TLSConfig   *tls.Config
	ImplicitTLS bool
	// Users, when set, requires AUTH PLAIN with one of these user/password pairs.
	Users map[string]string
	// Keep bounds memory: only the newest Keep messages are kept (500).
	Keep int
}

// Catcher is a running SMTP catcher. Safe for concurrent use.
type Catcher struct {
	cfg     Config
	srv     *smtp.Server
	ln      net.Listener
	mu      sync.Mutex
	msgs    []Message
	nextID  int
	changed chan struct{} // closed and replaced on every message
	done    chan struct{}
	page    *template.Template
}

// New starts a catcher listening on cfg.Addr.
func New(cfg Config) (*Catcher, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Keep <= 0 {
		cfg.Keep = 500
	}
	if cfg.ImplicitTLS && cfg.TLSConfig == nil {
		return nil, errors.New("mailcatcher: implicit TLS needs a TLSConfig")
	}
	var ln net.Listener
	var err error
	if cfg.ImplicitTLS {
		ln, err = tls.Listen("tcp", cfg.Addr, cfg.TLSConfig)
	} else {
		ln, err = net.Listen("tcp", cfg.Addr)
	}
	if err != nil {
		return nil, fmt.Errorf("mailcatcher: listen: %w", err)
	}
	c := &Catcher{cfg: cfg, ln: ln, changed: make(chan struct{}), done: make(chan struct{}), nextID: 1, page: newPage()}
	s := smtp.NewServer(smtp.BackendFunc(func(conn *smtp.Conn) (smtp.Session, error) {
		return &session{c: c, conn: conn}, nil
	}))
	s.Domain = "localhost"
	s.MaxMessageBytes = 10 << 20
	s.MaxRecipients = 50
	s.ReadTimeout = time.Minute
	s.WriteTimeout = time.Minute
	s.AllowInsecureAuth = cfg.TLSConfig == nil // loopback dev catcher without TLS
	if !cfg.ImplicitTLS {
		s.TLSConfig = cfg.TLSConfig
	}
	s.ErrorLog = discardLogger{}
	c.srv = s
	go func() { defer close(c.done); _ = s.Serve(ln) }()
	return c, nil
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}

// Addr returns the host:port the catcher listens on.
func (c *Catcher) Addr() string { return c.ln.Addr().String() }

// Close stops the server. It closes the listener itself too: the server
// closes only listeners its Serve has registered, and Close may come
// before that goroutine ran, which would leave it accepting for ever.
func (c *Catcher) Close() error {
	err := c.srv.Close()
	_ = c.ln.Close()
	<-c.done
	return err
}

// Messages returns the received messages, oldest first.
func (c *Catcher) Messages() []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Message(nil), c.msgs...)
}

// Wait blocks until at least n messages in total have arrived (counting
// from the start) or ctx ends, and returns them.
func (c *Catcher) Wait(ctx context.Context, n int) ([]Message, error) {
	for {
		c.mu.Lock()
		got, ch := c.nextID-1, c.changed
		c.mu.Unlock()
		if got >= n {
			return c.Messages(), nil
		}
		select {
		case <-ctx.Done():
			return c.Messages(), fmt.Errorf("mailcatcher: %d of %d messages: %w", got, n, ctx.Err())
		case <-ch:
		}
	}
}

func (c *Catcher) add(m Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m.ID = c.nextID
	c.nextID++
	c.msgs = append(c.msgs, m)
	if len(c.msgs) > c.cfg.Keep {
		c.msgs = append([]Message(nil), c.msgs[len(c.msgs)-c.cfg.Keep:]...)
	}
	close(c.changed)
	c.changed = make(chan struct{})
}

type session struct {
	c    *Catcher
	conn *smtp.Conn
	user string
	from string
	to   []string
}

func (s *session) AuthMechanisms() []string {
	if s.c.cfg.Users == nil {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if want, ok := s.c.cfg.Users[user]; !ok || want != pass {
			return smtp.ErrAuthFailed
		}
		s.user = user
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.c.cfg.Users != nil && s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := parse(raw)
	_, isTLS := s.conn.TLSConnectionState()
	m.From, m.To, m.Received, m.TLS, m.User = s.from, append([]string(nil), s.to...), time.Now(), isTLS, s.user
	s.c.add(m)
	return nil
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

var linkRE = regexp.MustCompile(`https?://[^\s<>"']+`)

// parse decodes what it can; a message it cannot decode is kept raw.
func parse(raw []byte) Message {
	m := Message{Raw: raw}
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		m.Text = string(raw)
		return m
	}
	dec := new(mime.WordDecoder)
	if subj, err := dec.DecodeHeader(msg.Header.Get("Subject")); err == nil {
		m.Subject = subj
	}
	readPart(&m, msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
	m.Links = linkRE.FindAllString(m.Text, -1)
	return m
}

func readPart(m *Message, ctype, cte string, body io.Reader) {
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		mt = "text/plain"
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err != nil {
				return
			}
			readPart(m, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p)
		}
	}
	if strings.EqualFold(cte, "quoted-printable") {
		body = quotedprintable.NewReader(body)
	}
	b, _ := io.ReadAll(io.LimitReader(body, 10<<20))
	switch mt {
	case "text/plain":
		m.Text += string(b)
	case "text/html":
		m.HTML += string(b)
	}
}
