package mail

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Config configures a Sender.
type Config struct {
	// URL is AUTHD_SMTP_URL: smtp://[user:pass@]host[:587] (STARTTLS required
	// unless ?starttls=false) or smtps://[user:pass@]host[:465] (implicit TLS).
	URL string
	// From is AUTHD_MAIL_FROM, e.g. "authd <no-reply@example.com>".
	From string
	// RootCAs verifies the server; nil means the system roots (which honour
	// SSL_CERT_FILE). Tests put their self-signed certificate here.
	RootCAs *x509.CertPool
	// Timeout bounds one whole submission; zero means 30s.
	Timeout time.Duration
	// LocalName is sent in EHLO; zero means "localhost".
	LocalName string
}

// Sender submits messages to one SMTP server. It is safe for concurrent use;
// each Send opens its own connection.
type Sender struct {
	addr, host string
	implicit   bool // smtps://
	starttls   bool
	user, pass string
	hasAuth    bool
	from       string
	fromAddr   string
	cfg        Config
}

// NewSender parses cfg.URL and cfg.From. It does not connect.
func NewSender(cfg Config) (*Sender, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("mail: AUTHD_SMTP_URL: %w", errors.Unwrap(err))
	}
	s := &Sender{cfg: cfg, from: cfg.From}
	port := ""
	switch u.Scheme {
	case "smtp":
		port, s.starttls = "587", true
		if v := u.Query().Get("starttls"); v != "" {
			switch v {
			case "true":
			case "false":
				s.starttls = false
			default:
				return nil, fmt.Errorf("mail: AUTHD_SMTP_URL: starttls must be true or false, got %q", v)
			}
		}
	case "smtps":
		port, s.implicit = "465", true
	default:
		return nil, fmt.Errorf("mail: AUTHD_SMTP_URL: scheme must be smtp or smtps, got %q", u.Scheme)
	}
	s.host = u.Hostname()
	if s.host == "" {
		return nil, errors.New("mail: AUTHD_SMTP_URL: missing host")
	}
	if u.Port() != "" {
		port = u.Port()
	}
	s.addr = net.JoinHostPort(s.host, port)
	if u.User != nil {
		s.user = u.User.Username()
		s.pass, _ = u.User.Password()
		s.hasAuth = true
	}
	a, err := ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("mail: AUTHD_MAIL_FROM: %w", err)
	}
	s.fromAddr = a
	if s.cfg.Timeout <= 0 {
		s.cfg.Timeout = 30 * time.Second
	}
	if s.cfg.LocalName == "" {
		s.cfg.LocalName = "localhost"
	}
	return s, nil
}

// From returns the configured From header value.
func (s *Sender) From() string { return s.from }

// Send submits one message built by Build to the single recipient to.
func (s *Sender) Send(ctx context.Context, to string, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("mail: connect %s: %w", s.addr, err)
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	// Closing the connection is how a cancelled ctx interrupts a stuck server.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()

	tlsCfg := &tls.Config{ServerName: s.host, RootCAs: s.cfg.RootCAs, MinVersion: tls.VersionTLS12}
	var c *smtp.Client
	switch {
	case s.implicit:
		c = smtp.NewClient(tls.Client(conn, tlsCfg))
	case s.starttls:
		// Fails when the server does not offer STARTTLS: no silent downgrade.
		c, err = smtp.NewClientStartTLS(conn, tlsCfg)
		if err != nil {
			_ = conn.Close()
			return fmt.Errorf("mail: STARTTLS with %s: %w", s.addr, err)
		}
	default:
		c = smtp.NewClient(conn)
	}
	defer c.Close()
	if err := c.Hello(s.cfg.LocalName); err != nil {
		return fmt.Errorf("mail: EHLO %s: %w", s.addr, err)
	}
	if s.hasAuth {
		if err := c.Auth(sasl.NewPlainClient("", s.user, s.pass)); err != nil {
			return fmt.Errorf("mail: AUTH PLAIN as %s: %w", s.user, err)
		}
	}
	if err := c.SendMail(s.fromAddr, []string{to}, bytes.NewReader(msg)); err != nil {
		return fmt.Errorf("mail: submit to %s: %w", s.addr, err)
	}
	_ = c.Quit()
	return nil
}

// ParseAddress returns the bare address of an RFC 5322 mailbox such as
// "authd <no-reply@example.com>".
func ParseAddress(s string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return "", errors.New("empty address")
	}
	a, err := parseMailbox(s)
	if err != nil {
		return "", fmt.Errorf("invalid address %q", s)
	}
	return a, nil
}
