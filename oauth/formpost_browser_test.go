package oauth_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/mux"

	"github.com/authd/authd/internal/testkit"
	"github.com/authd/authd/oauth/clients"
)

// TestBrowser_FormPostResponseMode drives headless Chromium through a
// response_mode=form_post login: the hosted page (no script, strict CSP)
// must still post the code, state and iss to the client's redirect URI.
func TestBrowser_FormPostResponseMode(t *testing.T) {
	var clientID string
	e := newEnv(t, func(r *mux.Router, e *env) {
		c, _, err := e.clients.CreateClient(context.Background(), clients.Spec{Name: "form_post app",
			RedirectURIs: []string{e.issuer + "/rp/cb"}, Scopes: []string{"openid", "email"}})
		if err != nil {
			t.Fatal(err)
		}
		clientID = c.ID
		// The relying party's callback: it shows what the browser posted.
		r.HandleFunc("/rp/cb", func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm()
			fmt.Fprintf(w, "<!doctype html><p id=m>%s</p><p id=c>%t</p><p id=i>%s</p><p id=s>%s</p>",
				html.EscapeString(r.Method), r.PostForm.Get("code") != "", html.EscapeString(r.PostForm.Get("iss")),
				html.EscapeString(r.PostForm.Get("state")))
		}).Methods(http.MethodPost)
	})
	ctx := testkit.Chromium(t, 60*time.Second)
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
		return strings.TrimSpace(s)
	}

	_, challenge := pkce()
	state := randString()
	authURL := e.issuer + "/oauth2/auth?response_type=code&response_mode=form_post&scope=openid+email&client_id=" + clientID +
		"&redirect_uri=" + e.issuer + "/rp/cb&state=" + state + "&code_challenge=" + challenge + "&code_challenge_method=S256"
	do("open", chromedp.Navigate(authURL), chromedp.WaitVisible(chromedp.ID("email")))
	do("log in",
		chromedp.SendKeys(chromedp.ID("email"), userEmail),
		chromedp.SendKeys(chromedp.ID("password"), userPassword),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`button[value=allow]`)))
	// The form_post page's form is the one that posts to the client (the
	// consent page's own POST form matched a looser selector, so the wait
	// could end on the old page and the click go nowhere).
	toClient := chromedp.CSS(`form[action="` + e.issuer + `/rp/cb"] button[type=submit]`)
	do("allow", chromedp.Click(chromedp.CSS(`button[value=allow]`)), chromedp.WaitVisible(toClient))
	do("continue", chromedp.Click(toClient), chromedp.WaitVisible(chromedp.ID("m")))
	if m, c, i, s := text("#m"), text("#c"), text("#i"), text("#s"); m != "POST" || c != "true" || i != e.issuer || s != state {
		t.Fatalf("the client received method=%s code=%s iss=%s state=%s", m, c, i, s)
	}
}
