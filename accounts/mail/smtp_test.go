package mail_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authd/authd/accounts/mail"
	"github.com/authd/authd/internal/mailcatcher"
)

// MustSelfSigned returns a server TLS config for 127.0.0.1/localhost and a
// pool trusting it.
func MustSelfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "authd test smtp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}, pool
}

func MustCatcher(t *testing.T, cfg mailcatcher.Config) *mailcatcher.Catcher {
	t.Helper()
	c, err := mailcatcher.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func testMessage(t *testing.T) []byte {
	t.Helper()
	msg, err := mail.Build(mail.Message{From: "authd <no-reply@example.com>", To: "alice@example.com", Subject: "Grüße — hello",
		Text: "Open https://example.com/x?token=abc\nthanks", HTML: "<p>Open <a href=\"https://example.com/x?token=abc\">link</a></p>", ID: "m1", Date: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func send(t *testing.T, url string, pool *x509.CertPool) error {
	t.Helper()
	s, err := mail.NewSender(mail.Config{URL: url, From: "authd <no-reply@example.com>", RootCAs: pool, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s.Send(context.Background(), "alice@example.com", testMessage(t))
}

func checkMessage(t *testing.T, c *mailcatcher.Catcher, wantTLS bool, wantUser string) {
	t.Helper()
	msgs := c.Messages()
	if len(msgs) != 1 {
		t.Fatalf("caught %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.TLS != wantTLS || m.User != wantUser {
		t.Errorf("TLS=%v user=%q, want %v %q", m.TLS, m.User, wantTLS, wantUser)
	}
	if m.Subject != "Grüße — hello" || m.From != "no-reply@example.com" || len(m.To) != 1 || m.To[0] != "alice@example.com" {
		t.Errorf("envelope/subject = %q %q %v", m.Subject, m.From, m.To)
	}
	if !strings.Contains(string(m.Raw), "multipart/alternative") || !strings.Contains(m.Text, "thanks") || !strings.Contains(m.HTML, "<a href=") {
		t.Errorf("body not multipart text+html: text=%q html=%q", m.Text, m.HTML)
	}
	if len(m.Links) != 1 || m.Links[0] != "https://example.com/x?token=abc" {
		t.Errorf("links = %v", m.Links)
	}
}

func TestSender_STARTTLSWithAuth(t *testing.T) {
	tlsCfg, pool := MustSelfSigned(t)
	c := MustCatcher(t, mailcatcher.Config{TLSConfig: tlsCfg, Users: map[string]string{"mailer": "s3cret pass"}})
	if err := send(t, "smtp://mailer:s3cret%20pass@"+c.Addr(), pool); err != nil {
		t.Fatal(err)
	}
	checkMessage(t, c, true, "mailer")
}

func TestSender_ImplicitTLS(t *testing.T) {
	tlsCfg, pool := MustSelfSigned(t)
	c := MustCatcher(t, mailcatcher.Config{TLSConfig: tlsCfg, ImplicitTLS: true, Users: map[string]string{"u": "p"}})
	if err := send(t, "smtps://u:p@"+c.Addr(), pool); err != nil {
		t.Fatal(err)
	}
	checkMessage(t, c, true, "u")
}

func TestSender_Errors(t *testing.T) {
	tlsCfg, pool := MustSelfSigned(t)
	plain := MustCatcher(t, mailcatcher.Config{})
	secure := MustCatcher(t, mailcatcher.Config{TLSConfig: tlsCfg, Users: map[string]string{"u": "p"}})
	t.Run("ErrNoSTARTTLSOffered", func(t *testing.T) {
		if err := send(t, "smtp://"+plain.Addr(), pool); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
			t.Fatalf("err = %v, want STARTTLS refusal", err)
		}
	})
	t.Run("OKStartTLSDisabled", func(t *testing.T) {
		if err := send(t, "smtp://"+plain.Addr()+"?starttls=false", nil); err != nil {
			t.Fatal(err)
		}
		checkMessage(t, plain, false, "")
	})
	t.Run("ErrUntrustedCertificate", func(t *testing.T) {
		if err := send(t, "smtp://u:p@"+secure.Addr(), nil); err == nil {
			t.Fatal("self-signed certificate accepted without being trusted")
		}
	})
	t.Run("ErrBadPassword", func(t *testing.T) {
		if err := send(t, "smtp://u:wrong@"+secure.Addr(), pool); err == nil || !strings.Contains(err.Error(), "AUTH") {
			t.Fatalf("err = %v, want AUTH failure", err)
		}
	})
	t.Run("ErrBadURL", func(t *testing.T) {
		for _, u := range []string{"http://x:25", "smtp://", "smtp://h:25?starttls=maybe"} {
			if _, err := mail.NewSender(mail.Config{URL: u, From: "a@b.c"}); err == nil {
				t.Errorf("%s accepted", u)
			}
		}
	})
}

func TestLoadTemplates_OverrideFromDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "verify_email.txt"), []byte(`{{define "subject"}}Custom {{.Email}}{{end}}Go to {{.Link}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tp, err := mail.LoadTemplates(dir)
	if err != nil {
		t.Fatal(err)
	}
	subj, text, html, err := tp.Render(mail.VerifyEmail, mail.Data{Email: "a@b.c", Link: "https://x/y"})
	if err != nil {
		t.Fatal(err)
	}
	if subj != "Custom a@b.c" || text != "Go to https://x/y\n" || !strings.Contains(html, "https://x/y") {
		t.Fatalf("subject=%q text=%q html=%q", subj, text, html)
	}
	for _, name := range []string{mail.PasswordReset, mail.PasswordChanged} {
		if _, _, _, err := tp.Render(name, mail.Data{Email: "a@b.c", Link: "https://x/y", Expires: "1 hour", BaseURL: "https://x"}); err != nil {
			t.Errorf("embedded %s: %v", name, err)
		}
	}
}
