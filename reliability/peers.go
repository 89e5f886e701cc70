package reliability

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/authd/authd/accounts"
)

// Mode is how a fake peer behaves right now.
type Mode int32

// Peer modes. Not every peer has every mode.
const (
	Healthy Mode = iota
	Fail         // webhook: 500; SMTP: 421 at the greeting (refuse)
	Hang         // accept and never answer until the mode changes
	Drop         // SMTP: close mid-DATA; Logstash: read a little, then close
	Down         // Logstash: not listening (connection refused)
)

func (m Mode) String() string {
	return [...]string{"healthy", "failing", "hanging", "dropping", "down"}[m]
}

// modeSwitch holds a mode and wakes hung handlers when it changes.
type modeSwitch struct {
	mu      sync.Mutex
	mode    Mode
	changed chan struct{}
}

func (s *modeSwitch) get() (Mode, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.mode, s.changed
}

func (s *modeSwitch) set(m Mode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mode = m
	if s.changed != nil {
		close(s.changed)
	}
	s.changed = make(chan struct{})
}

// WebhookReceiver is AUTHD_WEBHOOK_URL: it checks signatures and counts
// deliveries by event id.
type WebhookReceiver struct {
	URL      string
	secret   []byte
	srv      *http.Server
	mode     modeSwitch
	mu       sync.Mutex
	got      map[string]int // event id -> accepted deliveries
	attempts atomic.Int64
	badSig   atomic.Int64
}

// NewWebhookReceiver listens on a loopback port.
func NewWebhookReceiver(secret string) (*WebhookReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &WebhookReceiver{URL: "http://" + ln.Addr().String() + "/hook", secret: []byte(secret), got: map[string]int{}}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *WebhookReceiver) serve(w http.ResponseWriter, req *http.Request) {
	r.attempts.Add(1)
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		return
	}
	mode, changed := r.mode.get()
	switch mode {
	case Fail:
		http.Error(w, "receiver failing on purpose", http.StatusInternalServerError)
		return
	case Hang:
		select {
		case <-changed: // released: answer as a failure, the attempt was hung
		case <-req.Context().Done():
		}
		http.Error(w, "receiver was hanging", http.StatusServiceUnavailable)
		return
	}
	sig := req.Header.Get("Authd-Signature")
	ts, _, _ := strings.Cut(strings.TrimPrefix(sig, "t="), ",")
	var t int64
	for _, c := range ts {
		t = t*10 + int64(c-'0')
	}
	if sig == "" || accounts.SignWebhook(r.secret, time.Unix(t, 0), body) != sig {
		r.badSig.Add(1)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	r.mu.Lock()
	r.got[req.Header.Get("Authd-Delivery")]++
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// SetMode switches behaviour; hung requests are released.
func (r *WebhookReceiver) SetMode(m Mode) { r.mode.set(m) }

// Deliveries returns accepted deliveries by event id.
func (r *WebhookReceiver) Deliveries() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.got))
	for k, v := range r.got {
		out[k] = v
	}
	return out
}

// Attempts is how many requests arrived (any outcome); BadSignatures how
// many failed the signature check.
func (r *WebhookReceiver) Attempts() int64      { return r.attempts.Load() }
func (r *WebhookReceiver) BadSignatures() int64 { return r.badSig.Load() }

// Close stops the receiver.
func (r *WebhookReceiver) Close() {
	r.mode.set(Healthy)
	_ = r.srv.Close()
}

// SMTPServer is AUTHD_SMTP_URL's far side: a go-smtp server whose backend
// misbehaves on demand. It counts messages by Message-ID.
type SMTPServer struct {
	Addr     string
	srv      *smtp.Server
	mode     modeSwitch
	mu       sync.Mutex
	got      map[string]int
	attempts atomic.Int64
}

// NewSMTPServer listens on a loopback port (no TLS: authd is told
// ?starttls=false, as for local catchers).
func NewSMTPServer() (*SMTPServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &SMTPServer{Addr: ln.Addr().String(), got: map[string]int{}}
	s.srv = smtp.NewServer(smtp.BackendFunc(s.newSession))
	s.srv.Domain = "localhost"
	s.srv.ReadTimeout = time.Minute
	s.srv.WriteTimeout = time.Minute
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// URL is the AUTHD_SMTP_URL for this server.
func (s *SMTPServer) URL() string { return "smtp://" + s.Addr + "?starttls=false" }

func (s *SMTPServer) newSession(c *smtp.Conn) (smtp.Session, error) {
	s.attempts.Add(1)
	mode, _ := s.mode.get()
	if mode == Fail {
		return nil, &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "refusing on purpose"}
	}
	return &smtpSession{s: s, c: c}, nil
}

type smtpSession struct {
	s *SMTPServer
	c *smtp.Conn
}

func (x *smtpSession) Reset()        {}
func (x *smtpSession) Logout() error { return nil }

func (x *smtpSession) Mail(string, *smtp.MailOptions) error {
	mode, changed := x.s.mode.get()
	if mode == Hang {
		<-changed
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "was hanging"}
	}
	return nil
}

func (x *smtpSession) Rcpt(string, *smtp.RcptOptions) error { return nil }

func (x *smtpSession) Data(r io.Reader) error {
	if mode, _ := x.s.mode.get(); mode == Drop {
		_, _ = io.CopyN(io.Discard, r, 100)
		_ = x.c.Conn().Close() // hang up in the middle of DATA
		return errors.New("dropped on purpose")
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	id := ""
	for _, line := range strings.Split(string(b), "\r\n") {
		if v, ok := strings.CutPrefix(line, "Message-ID: "); ok {
			id = v
			break
		}
		if line == "" {
			break
		}
	}
	x.s.mu.Lock()
	x.s.got[id]++
	x.s.mu.Unlock()
	return nil
}

// SetMode switches behaviour; hung sessions are released.
func (s *SMTPServer) SetMode(m Mode) { s.mode.set(m) }

// Messages returns accepted messages by Message-ID.
func (s *SMTPServer) Messages() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.got))
	for k, v := range s.got {
		out[k] = v
	}
	return out
}

// Attempts is how many SMTP sessions were opened.
func (s *SMTPServer) Attempts() int64 { return s.attempts.Load() }

// Close stops the server.
func (s *SMTPServer) Close() {
	s.mode.set(Healthy)
	_ = s.srv.Close()
}
