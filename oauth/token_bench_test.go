package oauth_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	loginui "github.com/authd/authd/login-ui"
	"github.com/authd/authd/oauth"
	"github.com/authd/authd/oauth/clients"
	"github.com/authd/authd/oauth/keys"
	"github.com/authd/authd/storage/fositestore"
	"github.com/authd/authd/storage/storagetest"
)

// The benchmarks drive the provider's handlers in process (no sockets), on
// the test harness's Postgres (fsync off), so they measure authd's CPU and
// round trips per token, not commit latency: cmd/authd-bench measures that.
// Run: go test -run '^$' -bench . -benchmem -count 6 ./oauth/ | tee new.txt; benchstat old.txt new.txt

// benchProvider is a provider with a service client (client_credentials,
// scopes credits:charge introspect) and a first-party client with a user,
// for refresh chains through the password grant.
type benchProvider struct {
	prov               *oauth.Provider
	handler            http.Handler
	issuer             string
	svcID, svcSecret   string
	fpID, fpSecret     string
	userEmail, userPwd string
}

func newBenchProvider(b *testing.B) *benchProvider {
	b.Helper()
	db := storagetest.NewDB(b)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	log := zap.NewNop()
	hasher, err := accounts.NewPasswordHasher("bcrypt", 4, 0)
	if err != nil {
		b.Fatal(err)
	}
	accts := accounts.New(db.Pool, hasher, log, accounts.Config{})
	store := fositestore.New(db.Pool, fositestore.Options{})
	km, err := keys.NewManager(db.Pool, secret, keys.Config{}, log)
	if err != nil {
		b.Fatal(err)
	}
	if err := km.Start(ctx); err != nil {
		b.Fatal(err)
	}
	ui, err := loginui.New(secret, false, log)
	if err != nil {
		b.Fatal(err)
	}
	bp := &benchProvider{issuer: "http://127.0.0.1:1", userEmail: "bench@example.com", userPwd: "bench password 1"}
	bp.prov, err = oauth.New(oauth.Config{Issuer: bp.issuer, SecretsKey: secret, RefreshReuseWindow: 10 * time.Second},
		db.Pool, store, km, accts, ui, log, nil)
	if err != nil {
		b.Fatal(err)
	}
	r := mux.NewRouter()
	bp.prov.Mount(r)
	bp.handler = r
	svc, s1, err := bp.prov.Clients().CreateClient(ctx, clients.Spec{Name: "svc", GrantTypes: []string{"client_credentials"},
		Scopes: []string{"credits:charge", "introspect"}})
	if err != nil {
		b.Fatal(err)
	}
	fp, s2, err := bp.prov.Clients().CreateClient(ctx, clients.Spec{Name: "fp", FirstParty: true,
		GrantTypes: []string{"password", "refresh_token"}, Scopes: []string{"offline_access", "credits:read"}})
	if err != nil {
		b.Fatal(err)
	}
	bp.svcID, bp.svcSecret, bp.fpID, bp.fpSecret = svc.ID, s1, fp.ID, s2
	if _, err := accts.CreateUser(ctx, accounts.NewUser{Email: bp.userEmail, Password: bp.userPwd, Verified: true}, nil); err != nil {
		b.Fatal(err)
	}
	return bp
}

// post runs one form POST through the handler and decodes the JSON answer.
func (bp *benchProvider) post(tb testing.TB, path, id, secret string, form url.Values, ip string) map[string]any {
	req := httptest.NewRequest(http.MethodPost, bp.issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	req.RemoteAddr = ip + ":1234"
	rec := httptest.NewRecorder()
	bp.handler.ServeHTTP(rec, req)
	out := map[string]any{}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &out) != nil {
		tb.Fatalf("%s: %d %s", path, rec.Code, rec.Body.String())
	}
	return out
}

func (bp *benchProvider) ccToken(tb testing.TB) string {
	out := bp.post(tb, "/oauth2/token", bp.svcID, bp.svcSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"credits:charge"}}, "127.0.0.1")
	return out["access_token"].(string)
}

// BenchmarkToken_ClientCredentials is POST /oauth2/token for a
// client_credentials JWT (ES256): client lookup and secret check, signing,
// the access-token row.
func BenchmarkToken_ClientCredentials(b *testing.B) {
	bp := newBenchProvider(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			bp.ccToken(b)
		}
	})
}

// BenchmarkIntrospect is POST /oauth2/introspect of a live access token by
// a resource server (scope introspect).
func BenchmarkIntrospect(b *testing.B) {
	bp := newBenchProvider(b)
	tok := bp.ccToken(b)
	form := url.Values{"token": {tok}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if out := bp.post(b, "/oauth2/introspect", bp.svcID, bp.svcSecret, form, "127.0.0.1"); out["active"] != true {
				b.Fatalf("inactive: %v", out)
			}
		}
	})
}

// BenchmarkVerifyAccessToken is the lookup behind every bearer-token API
// call (credits spend): signature, claims, the revocation row.
func BenchmarkVerifyAccessToken(b *testing.B) {
	bp := newBenchProvider(b)
	tok := bp.ccToken(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := bp.prov.VerifyAccessToken(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkToken_Refresh rotates refresh tokens (no openid: no ID token),
// one chain per goroutine, as many apps refreshing at once.
func BenchmarkToken_Refresh(b *testing.B) {
	bp := newBenchProvider(b)
	var ipSeq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		// The password grant is limited per IP; each chain starts from its own.
		ip := "10.0.0." + strconv.Itoa(int(ipSeq.Add(1)))
		out := bp.post(b, "/oauth2/token", bp.fpID, bp.fpSecret, url.Values{"grant_type": {"password"},
			"username": {bp.userEmail}, "password": {bp.userPwd}, "scope": {"offline_access credits:read"}}, ip)
		rt, _ := out["refresh_token"].(string)
		for pb.Next() {
			out := bp.post(b, "/oauth2/token", bp.fpID, bp.fpSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, ip)
			rt, _ = out["refresh_token"].(string)
		}
	})
}
