package loginui_test

import (
	"context"
	"crypto/rand"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/gorilla/mux"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/accounts/mail"
	"github.com/authd/authd/internal/mailcatcher"
	"github.com/authd/authd/internal/testkit"
	loginui "github.com/authd/authd/login-ui"
	"github.com/authd/authd/storage/storagetest"
)

func TestMain(m *testing.M) { os.Exit(storagetest.Main(m)) }

// site is the hosted pages on a real loopback server, with the outbox worker
// mailing through the test's own go-smtp server.
type site struct {
	t       *testing.T
	url     string
	accts   *accounts.Service
	pool    *pgxpool.Pool
	catcher *mailcatcher.Catcher
	ui      *loginui.UI
	router  *mux.Router
	used    map[int]bool // caught messages already handed out
}

// siteOpts customise newSite.
type siteOpts struct {
	cfg accounts.Config
	// revoker builds Config.Revoker on the test's database.
	revoker func(pool *pgxpool.Pool) accounts.TokenRevoker
	// mount adds routes (the OAuth provider, which brings /login) before the
	// server starts; without it the plain /login page is mounted.
	mount func(r *mux.Router, s *site)
	// pages adjusts the account pages before they are mounted.
	pages func(p *loginui.AccountPages, s *site)
}

// newSite starts the hosted pages on a fresh database.
func newSite(t *testing.T, o siteOpts) *site {
	t.Helper()
	db := storagetest.NewDB(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &site{t: t, url: "http://" + ln.Addr().String(), pool: db.Pool, used: map[int]bool{}}
	log := zap.NewNop()
	hasher, _ := accounts.NewPasswordHasher("bcrypt", 4, 0)
	cfg := o.cfg
	cfg.BaseURL = s.url
	if o.revoker != nil {
		cfg.Revoker = o.revoker(db.Pool)
	}
	s.accts = accounts.New(db.Pool, hasher, log, cfg)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	if s.ui, err = loginui.New(key, false, log); err != nil {
		t.Fatal(err)
	}
	if s.catcher, err = mailcatcher.New(mailcatcher.Config{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.catcher.Close() })
	sender, err := mail.NewSender(mail.Config{URL: "smtp://" + s.catcher.Addr() + "?starttls=false", From: "authd <no-reply@authd.test>"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := accounts.NewWorker(db.Pool, log, accounts.WorkerConfig{Mailer: sender, MailFrom: sender.From()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	s.router = mux.NewRouter()
	s.router.PathPrefix("/static/").Handler(loginui.Static())
	s.router.PathPrefix("/dev/mail").Handler(s.catcher)
	pages := &loginui.AccountPages{UI: s.ui, Accounts: s.accts, Limits: accounts.DefaultLimits(), Log: log}
	if o.pages != nil {
		o.pages(pages, s)
	}
	pages.MountPages(s.router)
	if o.mount != nil {
		o.mount(s.router, s)
	} else {
		login := &loginui.Login{UI: s.ui, Accounts: s.accts}
		s.router.Handle("/login", login)
		s.router.HandleFunc("/logout", login.Logout)
	}
	srv := httptest.NewUnstartedServer(s.router)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return s
}

// mailTo waits for a message to addr with subject not handed out before and
// returns its first link.
func (s *site) mailTo(addr, subject string) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for n := 1; ; n++ {
		msgs, err := s.catcher.Wait(ctx, n)
		if err != nil {
			s.t.Fatalf("no %q mail to %s: %v", subject, addr, err)
		}
		for i := len(msgs) - 1; i >= 0; i-- {
			m := msgs[i]
			if m.To[0] == addr && m.Subject == subject && len(m.Links) > 0 && !s.used[m.ID] {
				s.used[m.ID] = true
				return m.Links[0]
			}
		}
	}
}

// newBrowser starts headless Chromium with a fresh profile.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	ctx := testkit.Chromium(t, 90*time.Second)
	return ctx
}

// open navigates and returns the HTTP status.
func open(t *testing.T, ctx context.Context, u string) int64 {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(u))
	if err != nil {
		t.Fatalf("open %s: %v", u, err)
	}
	return resp.Status
}

// fill sets the values of inputs by id (setValue).
func fill(t *testing.T, ctx context.Context, fields ...string) {
	t.Helper()
	for i := 0; i+1 < len(fields); i += 2 {
		if err := chromedp.Do(ctx, setValue(fields[i], fields[i+1])); err != nil {
			t.Fatalf("fill %s: %v", fields[i], err)
		}
	}
}

// submit clicks the button of the form posting to action and waits for the
// resulting page.
func submit(t *testing.T, ctx context.Context, action string) *network.Response {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`form[action="`+action+`"] button[type=submit]`)))
	if err != nil {
		t.Fatalf("submit %s: %v", action, err)
	}
	return resp
}

// text returns the visible text of the page's main card.
func text(t *testing.T, ctx context.Context) string {
	t.Helper()
	// A query racing the page's replacement after a navigation finds its node
	// gone ("No node with given id"); asking again reads the new document.
	var s string
	var err error
	for i := 0; i < 5; i++ {
		if s, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body"))); err == nil || !strings.Contains(err.Error(), "No node with given id") {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustContain(t *testing.T, ctx context.Context, want ...string) {
	t.Helper()
	got := text(t, ctx)
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Fatalf("page lacks %q:\n%s", w, got)
		}
	}
}

// screenshot saves the page as testdata/screenshots/<name>.png at the
// repository root (gitignored).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join("..", "testdata", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// setValue sets an input's value by id: SetValue, or Clear for "" (which
// SetValue cannot set). Not Clear+SendKeys: SendKeys reads node attributes
// while the DOM events of the clear write them (a data race in chromedp).
func setValue(id, value string) chromedp.Action[chromedp.Void] {
	if value == "" {
		return chromedp.Clear(chromedp.ID(id))
	}
	return chromedp.SetValue(chromedp.ID(id), value)
}
