package oauth_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/authd/authd/internal/testkit"
)

// TestBrowser_DeviceLogin drives headless Chromium through /device as a
// user would after scanning verification_uri_complete: log in, confirm the
// prefilled code, allow; the device's next poll gets tokens. Each page is
// saved as a screenshot and must carry no script.
func TestBrowser_DeviceLogin(t *testing.T) {
	e := newEnv(t)
	client, secret := e.deviceClient()
	start := e.startDevice(client.ID, secret, "openid profile offline_access")
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
		html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(html, "<script") {
			t.Errorf("%s carries a script", name)
		}
	}
	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}

	do("open verification_uri_complete", chromedp.Navigate(start.VerificationURIComplete), chromedp.WaitVisible(chromedp.ID("email")))
	do("log in",
		chromedp.SendKeys(chromedp.ID("email"), userEmail),
		chromedp.SendKeys(chromedp.ID("password"), userPassword),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("user_code")))
	code, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("user_code")))
	if err != nil || code != start.UserCode {
		t.Fatalf("prefilled code %q (%v), want %q", code, err, start.UserCode)
	}
	shot("device-01-code.png")
	do("continue", chromedp.Click(chromedp.CSS(`form[action="/device"] button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS(`button[value=allow]`)))
	shot("device-02-consent.png")
	// Wait for the consent page to go before reading the next one: its own
	// paragraphs would otherwise satisfy the wait.
	do("allow", chromedp.Click(chromedp.CSS(`button[value=allow]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`button[value=allow]`)), chromedp.WaitVisible(chromedp.CSS(`main p`)))
	msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`main p`)))
	if err != nil || !strings.Contains(msg, "Your device is connected") {
		t.Fatalf("after allow: %q %v", msg, err)
	}
	shot("device-03-done.png")

	if st, out := e.pollDevice(client.ID, secret, start.DeviceCode); st != http.StatusOK || out["access_token"] == nil {
		t.Fatalf("poll after approval: %d %v", st, out)
	}
}
