package oauth_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/mux"

	"github.com/authd/authd/internal/demo"
	"github.com/authd/authd/internal/testkit"
	"github.com/authd/authd/oauth/clients"
)

// screenshotDir is the repository's gitignored /testdata/screenshots/.
const screenshotDir = "../testdata/screenshots"

// TestBrowser_DemoLoginConsent drives headless Chromium through the demo
// relying party: /demo -> login -> consent -> /demo/callback showing the
// verified tokens, saving a screenshot of every page.
func TestBrowser_DemoLoginConsent(t *testing.T) {
	e := newEnv(t, func(r *mux.Router, e *env) {
		c, secret, err := e.clients.CreateClient(context.Background(), clients.Spec{Name: "authd demo app",
			RedirectURIs: []string{e.issuer + "/demo/callback"}, PostLogoutRedirectURIs: []string{e.issuer + "/demo"},
			Scopes: []string{"openid", "profile", "email", "roles", "offline_access", "credits:read"}})
		if err != nil {
			t.Fatal(err)
		}
		r.PathPrefix("/demo").Handler(demo.New(e.issuer, c.ID, secret, e.issuer+"/demo/callback", nil))
	})
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := testkit.Chromium(t, 60*time.Second)

	shot := func(name string) {
		t.Helper()
		buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(screenshotDir, name), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}

	do("open demo", chromedp.Navigate(e.issuer+"/demo"), chromedp.WaitVisible(chromedp.CSS(`form[action="/demo/login"] button`)))
	shot("01-demo.png")
	do("start login", chromedp.Click(chromedp.CSS(`form[action="/demo/login"] button`)), chromedp.WaitVisible(chromedp.ID("email")))
	shot("02-login.png")
	do("log in",
		chromedp.SendKeys(chromedp.ID("email"), userEmail),
		chromedp.SendKeys(chromedp.ID("password"), userPassword),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`button[value=allow]`)))
	shot("03-consent.png")
	do("allow", chromedp.Click(chromedp.CSS(`button[value=allow]`)), chromedp.WaitVisible(chromedp.CSS(`pre`)))
	heading := text("h1")
	idToken := text("pre:nth-of-type(1)")
	introspection := text("pre:nth-of-type(3)")
	shot("04-demo-callback.png")
	if heading != "You are logged in" || !strings.Contains(idToken, userEmail) || !strings.Contains(introspection, `"active": true`) {
		t.Errorf("callback page: %q\nID token: %s\nintrospection: %s", heading, idToken, introspection)
	}
}
