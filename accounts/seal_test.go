package accounts_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/accounts/mail"
	"github.com/authd/authd/internal/mailcatcher"
)

// A queued reset mail holds no usable token in the outbox, and the worker
// still delivers the working link.
func TestOutbox_ResetLinkSealedAtRest(t *testing.T) {
	sealer, err := accounts.NewLinkSealer(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	s, pool := MustServiceCfg(t, accounts.Config{Links: sealer, BaseURL: "http://authd.test"})
	ctx := context.Background()
	if _, err := s.CreateUser(ctx, accounts.NewUser{Email: "sealed@example.com", Password: "a-long-passphrase"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.ForgotPassword(ctx, "sealed@example.com"); err != nil {
		t.Fatal(err)
	}
	var payload string
	if err := pool.QueryRow(ctx, `SELECT payload::text FROM outbox WHERE kind = 'mail' AND type = $1`, mail.PasswordReset).Scan(&payload); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(payload, "token=") || !strings.Contains(payload, "sealed_link") {
		t.Fatalf("outbox payload holds the link in clear: %s", payload)
	}

	catcher, err := mailcatcher.New(mailcatcher.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer catcher.Close()
	sender, err := mail.NewSender(mail.Config{URL: "smtp://" + catcher.Addr() + "?starttls=false", From: "authd <a@example.com>"})
	if err != nil {
		t.Fatal(err)
	}
	startWorker(t, pool, accounts.WorkerConfig{Mailer: sender, MailFrom: "authd <a@example.com>", Links: sealer})
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	msgs, err := catcher.Wait(wctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var link string
	for _, l := range msgs[0].Links {
		if strings.Contains(l, "/password/reset?token=") {
			link = l
		}
	}
	if link == "" {
		t.Fatalf("delivered mail has no reset link: %v", msgs[0].Links)
	}
	tok := link[strings.Index(link, "token=")+len("token="):]
	if ok, err := s.ResetTokenValid(ctx, tok); err != nil || !ok {
		t.Fatalf("the delivered link's token is not valid: %v %v", ok, err)
	}
}
