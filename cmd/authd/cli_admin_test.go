package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	josev4 "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/authd/authd/oauth/clients"
	"github.com/authd/authd/storage/storagetest"
)

// runJSON runs a CLI command with --output json and decodes its output.
func runJSON(t *testing.T, env map[string]string, out any, args ...string) {
	t.Helper()
	s, err := runCLI(t, env, "", append(args, "--output", "json")...)
	if err != nil {
		t.Fatalf("authd %s: %v", strings.Join(args, " "), err)
	}
	if err := json.Unmarshal([]byte(s), out); err != nil {
		t.Fatalf("authd %s: not JSON: %q", strings.Join(args, " "), s)
	}
}

type cliUser struct {
	ID       string   `json:"id"`
	Email    string   `json:"email"`
	Roles    []string `json:"roles"`
	Disabled bool     `json:"disabled"`
}

func TestCLI_RolesAndUsers(t *testing.T) {
	db := storagetest.NewDB(t)
	env := map[string]string{"AUTHD_DATABASE_URL": db.URL, "AUTHD_BCRYPT_COST": "4"}

	// The README's order: the role first, then a user holding it.
	if _, err := runCLI(t, env, "pw-for-the-editor-1\n", "user", "create", "--email", "ed@example.com", "--password-stdin", "--role", "editor"); err == nil {
		t.Fatal("user create with a role that does not exist succeeded")
	}
	var role struct{ Name, Description string }
	runJSON(t, env, &role, "role", "create", "editor", "--description", "edits content")
	if role.Name != "editor" || role.Description != "edits content" {
		t.Fatalf("role create: %+v", role)
	}
	if _, err := runCLI(t, env, "", "role", "create", "editor"); err == nil {
		t.Fatal("duplicate role created")
	}
	var roles struct {
		Items []struct {
			Name  string `json:"name"`
			Users int    `json:"users"`
		} `json:"items"`
	}
	runJSON(t, env, &roles, "role", "list")
	if !slices.ContainsFunc(roles.Items, func(r struct {
		Name  string `json:"name"`
		Users int    `json:"users"`
	}) bool {
		return r.Name == "editor"
	}) {
		t.Fatalf("role list: %+v", roles)
	}
	var u cliUser
	s, err := runCLI(t, env, "pw-for-the-editor-1\n", "user", "create", "--output", "json", "--email", "ed@example.com", "--password-stdin", "--role", "editor")
	if err != nil || json.Unmarshal([]byte(s), &u) != nil || !slices.Contains(u.Roles, "editor") {
		t.Fatalf("user create --role editor: %v %q", err, s)
	}
	runCLI(t, env, "pw-for-someone-else\n", "user", "create", "--email", "other@example.com", "--password-stdin")

	var page struct {
		Items      []cliUser `json:"items"`
		NextCursor *string   `json:"next_cursor"`
	}
	runJSON(t, env, &page, "user", "list", "--role", "editor")
	if len(page.Items) != 1 || page.Items[0].ID != u.ID {
		t.Fatalf("user list --role editor: %+v", page)
	}
	runJSON(t, env, &page, "user", "list", "--limit", "1")
	if len(page.Items) != 1 || page.NextCursor == nil {
		t.Fatalf("user list --limit 1: %+v", page)
	}
	var got cliUser
	runJSON(t, env, &got, "user", "get", "ed@example.com")
	if got.ID != u.ID {
		t.Fatalf("user get by email: %+v", got)
	}
	if _, err := runCLI(t, env, "", "user", "get", "nobody@example.com"); err == nil {
		t.Fatal("user get of an unknown user succeeded")
	}

	runJSON(t, env, &got, "user", "disable", u.ID)
	if !got.Disabled {
		t.Fatalf("user disable: %+v", got)
	}
	runJSON(t, env, &page, "user", "list", "--disabled")
	if len(page.Items) != 1 || page.Items[0].ID != u.ID {
		t.Fatalf("user list --disabled: %+v", page)
	}
	runJSON(t, env, &got, "user", "enable", "ed@example.com")
	if got.Disabled {
		t.Fatalf("user enable: %+v", got)
	}

	if _, err := runCLI(t, env, "", "role", "delete", "editor"); err == nil {
		t.Fatal("a role in use was deleted")
	}
	var del struct{ ID, Outcome string }
	runJSON(t, env, &del, "user", "delete", "ed@example.com")
	if del.ID != u.ID || del.Outcome != "deleted" {
		t.Fatalf("user delete: %+v", del)
	}
	if _, err := runCLI(t, env, "", "user", "get", u.ID); err == nil {
		t.Fatal("deleted user still found")
	}
	var deleted struct {
		Name    string `json:"name"`
		Deleted bool   `json:"deleted"`
	}
	runJSON(t, env, &deleted, "role", "delete", "editor")
	if deleted.Name != "editor" || !deleted.Deleted {
		t.Fatalf("role delete: %+v", deleted)
	}
	runJSON(t, env, &roles, "role", "list")
	for _, r := range roles.Items {
		if r.Name == "editor" {
			t.Fatalf("role list after delete: %+v", roles)
		}
	}
}

func TestCLI_Credits(t *testing.T) {
	db := storagetest.NewDB(t)
	env := map[string]string{"AUTHD_DATABASE_URL": db.URL, "AUTHD_BCRYPT_COST": "4"}
	if _, err := runCLI(t, env, "pw-of-the-payer-12\n", "user", "create", "--email", "pay@example.com", "--password-stdin"); err != nil {
		t.Fatal(err)
	}
	type tx struct {
		ID       string `json:"id"`
		Amount   int64  `json:"amount"`
		Balance  int64  `json:"balance"`
		Replayed bool   `json:"replayed"`
	}
	var first, again tx
	runJSON(t, env, &first, "credits", "grant", "pay@example.com", "150", "--reference", "welcome", "--description", "welcome bonus")
	runJSON(t, env, &again, "credits", "grant", "pay@example.com", "150", "--reference", "welcome", "--description", "welcome bonus")
	if first.Amount != 150 || first.Balance != 150 || first.Replayed || again.ID != first.ID || !again.Replayed {
		t.Fatalf("grant %+v, repeated %+v", first, again)
	}
	for _, bad := range []string{"0", "-5", "1.5", "lots"} {
		if _, err := runCLI(t, env, "", "credits", "grant", "pay@example.com", bad); err == nil {
			t.Errorf("grant of %q accepted", bad)
		}
	}
	var bal struct {
		UserID  string `json:"user_id"`
		Balance int64  `json:"balance"`
	}
	runJSON(t, env, &bal, "credits", "balance", "pay@example.com")
	if bal.Balance != 150 || bal.UserID == "" {
		t.Fatalf("balance %+v", bal)
	}
	var hist struct {
		Items []struct {
			ID        string `json:"id"`
			Kind      string `json:"kind"`
			Reference string `json:"reference"`
		} `json:"items"`
	}
	runJSON(t, env, &hist, "credits", "history", "pay@example.com")
	if len(hist.Items) != 1 || hist.Items[0].ID != first.ID || hist.Items[0].Kind != "grant" || hist.Items[0].Reference != "welcome" {
		t.Fatalf("history %+v", hist)
	}
	if _, err := runCLI(t, env, "", "credits", "balance", "nobody@example.com"); err == nil {
		t.Fatal("balance of an unknown user succeeded")
	}
}

// Every command that uses the database finds the one `authd dev` left in
// .authd/database_url, migrate included.
func TestCLI_EveryCommandFindsDevDatabase(t *testing.T) {
	db := storagetest.NewDB(t)
	t.Chdir(t.TempDir())
	if err := os.Mkdir(devDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(devDir, "database_url"), []byte(db.URL+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"AUTHD_DATABASE_URL": "", "AUTHD_ENV": "development"}
	var v struct {
		Version uint `json:"version"`
		Latest  uint `json:"latest"`
	}
	runJSON(t, env, &v, "migrate", "version")
	if v.Version == 0 || v.Version != v.Latest {
		t.Fatalf("migrate version: %+v", v)
	}
	var roles map[string]any
	runJSON(t, env, &roles, "role", "list")
	var clients []any
	runJSON(t, env, &clients, "client", "list")
	// Every other command family that reads the database, the same way.
	if _, err := runCLI(t, env, "a long enough passphrase\n", "user", "create", "--email", "dev@example.com", "--password-stdin"); err != nil {
		t.Fatalf("user create: %v", err)
	}
	for _, args := range [][]string{
		{"user", "list"}, {"user", "get", "dev@example.com"}, {"credits", "balance", "dev@example.com"},
		{"credits", "history", "dev@example.com"}, {"keys", "list"}, {"ledger", "verify"}, {"provider", "list"},
	} {
		if _, err := runCLI(t, env, "", args...); err != nil {
			t.Errorf("authd %s: %v", strings.Join(args, " "), err)
		}
	}

	if err := os.Remove(filepath.Join(devDir, "database_url")); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, env, "", "migrate", "version"); err == nil || !strings.Contains(err.Error(), "AUTHD_DATABASE_URL") {
		t.Fatalf("without a database: %v", err)
	}
}

// writeJWKS writes a public key set file for `client create --jwks`.
func writeJWKS(t *testing.T, keys ...josev4.JSONWebKey) string {
	t.Helper()
	b, _ := json.Marshal(josev4.JSONWebKeySet{Keys: keys})
	p := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// signedAssertion is a private_key_jwt client assertion made with go-jose.
func signedAssertion(t *testing.T, clientID, aud string, key crypto.Signer, alg josev4.SignatureAlgorithm) string {
	t.Helper()
	sig, err := josev4.NewSigner(josev4.SigningKey{Algorithm: alg, Key: key}, (&josev4.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	raw, err := josejwt.Signed(sig).Claims(josejwt.Claims{Issuer: clientID, Subject: clientID, Audience: josejwt.Audience{aud},
		ID: secRand(), IssuedAt: josejwt.NewNumericDate(now), Expiry: josejwt.NewNumericDate(now.Add(time.Minute))}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// A client registered with the CLI and nothing but its public key gets
// tokens with private_key_jwt, for EC and RSA keys alike.
func TestCLI_PrivateKeyJWTClientEndToEnd(t *testing.T) {
	db := storagetest.NewDB(t)
	env := map[string]string{"AUTHD_DATABASE_URL": db.URL}
	ts := startServer(t, db.URL, nil, nil)
	var disc struct {
		TokenEndpoint string   `json:"token_endpoint"`
		Algs          []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	}
	_, body := get(t, ts.URL+"/.well-known/openid-configuration")
	if err := json.Unmarshal([]byte(body), &disc); err != nil {
		t.Fatal(err)
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, tc := range []struct {
		name string
		key  crypto.Signer
		alg  josev4.SignatureAlgorithm
	}{{"ES256", ec, josev4.ES256}, {"RS256", rk, josev4.RS256}} {
		t.Run(tc.name, func(t *testing.T) {
			if !slices.Contains(disc.Algs, string(tc.alg)) {
				t.Fatalf("discovery does not advertise %s: %v", tc.alg, disc.Algs)
			}
			var cl struct {
				ClientID     string `json:"client_id"`
				ClientSecret string `json:"client_secret"`
				Method       string `json:"token_endpoint_auth_method"`
				Alg          string `json:"token_endpoint_auth_signing_alg"`
			}
			runJSON(t, env, &cl, "client", "create", "--name", "signer "+tc.name, "--grant-type", "client_credentials",
				"--scope", "introspect", "--jwks", writeJWKS(t, josev4.JSONWebKey{Key: tc.key.Public(), KeyID: "k1"}))
			if cl.Method != "private_key_jwt" || cl.Alg != string(tc.alg) || cl.ClientSecret != "" {
				t.Fatalf("client create: %+v", cl)
			}
			cc := clientcredentials.Config{ClientID: cl.ClientID, TokenURL: disc.TokenEndpoint, AuthStyle: oauth2.AuthStyleInParams,
				Scopes: []string{"introspect"}, EndpointParams: url.Values{
					"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
					"client_assertion":      {signedAssertion(t, cl.ClientID, disc.TokenEndpoint, tc.key, tc.alg)},
				}}
			tok, err := cc.Token(context.Background())
			if err != nil || tok.AccessToken == "" {
				t.Fatalf("private_key_jwt token: %v", err)
			}
		})
	}
	t.Run("KeyThatCannotVerifyRefused", func(t *testing.T) {
		_, err := runCLI(t, env, "", "client", "create", "--name", "bad", "--grant-type", "client_credentials",
			"--jwks", writeJWKS(t, josev4.JSONWebKey{Key: ec.Public()}), "--token-auth-signing-alg", "RS256")
		if err == nil || !strings.Contains(err.Error(), "jwks") {
			t.Fatalf("EC key for RS256: %v", err)
		}
		_, err = runCLI(t, env, "", "client", "create", "--name", "bad", "--grant-type", "client_credentials",
			"--jwks", writeJWKS(t, josev4.JSONWebKey{Key: ec.Public()}), "--token-auth-method", "client_secret_basic")
		if err == nil {
			t.Fatal("--jwks with a secret method accepted")
		}
	})
}

// Browsers get hosted pages for what they cannot use: an authorization
// request that cannot be redirected and an unknown path. Both carry the
// request id; neither is JSON or names internal packages.
func TestServer_BrowserErrorPages(t *testing.T) {
	db := storagetest.NewDB(t)
	ts := startServer(t, db.URL, nil, nil)
	browse := func(path, accept string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
		req.Header.Set("Accept", accept)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	const html = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	app, _ := mustClient(t, db.URL, clients.Spec{Name: "app", RedirectURIs: []string{"https://app.example/cb"}, Scopes: []string{"openid"}})
	for _, tc := range []struct {
		name, path string
		status     int
	}{
		{"UnknownClient", "/oauth2/auth?response_type=code&client_id=nope&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&scope=openid&state=abcdefgh", 400},
		{"UnregisteredRedirect", "/oauth2/auth?response_type=code&client_id=" + app + "&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&scope=openid&state=abcdefgh", 400},
		{"UnknownPath", "/", 404},
		{"UnknownDeepPath", "/no/such/page", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, page := browse(tc.path, html)
			id := resp.Header.Get("X-Request-ID")
			if resp.StatusCode != tc.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || resp.Header.Get("Location") != "" {
				t.Fatalf("%d %s Location=%q\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Location"), page)
			}
			if id == "" || !strings.Contains(page, id) {
				t.Fatalf("page does not show the request id %q:\n%s", id, page)
			}
			if strings.Contains(page, "fositestore") || strings.Contains(page, "{\"") {
				t.Fatalf("page leaks internals:\n%s", page)
			}
		})
	}
	t.Run("APIClientsStillGetProblemJSON", func(t *testing.T) {
		resp, _ := browse("/no/such/page", "application/json")
		if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	})
}

// Even a dev server (which used to send fosite's debug text) names no
// internal package in an OAuth error description.
func TestServer_OAuthErrorsNameNoInternals(t *testing.T) {
	db := storagetest.NewDB(t)
	ts := startServer(t, db.URL, []string{"AUTHD_ENV=development"}, nil)
	cc := clientcredentials.Config{ClientID: "no-such-client", ClientSecret: "x", TokenURL: ts.URL + "/oauth2/token",
		AuthStyle: oauth2.AuthStyleInHeader}
	_, err := cc.Token(context.Background())
	re, ok := err.(*oauth2.RetrieveError)
	if !ok || re.ErrorCode != "invalid_client" {
		t.Fatalf("unknown client: %v", err)
	}
	for _, internal := range []string{"fositestore", "pgx", "sql:", "storage:"} {
		if strings.Contains(re.ErrorDescription, internal) {
			t.Fatalf("error_description names internals: %q", re.ErrorDescription)
		}
	}
}

// `user disable` revokes the user's tokens like the admin API: a refresh
// token issued before it stays dead after `user enable`.
func TestCLI_DisableRevokesTokens(t *testing.T) {
	ctx := context.Background()
	db := storagetest.NewDB(t)
	env := map[string]string{"AUTHD_DATABASE_URL": db.URL, "AUTHD_BCRYPT_COST": "4"}
	ts := startServer(t, db.URL, nil, nil)
	const pw = "a long enough passphrase"
	if _, err := runCLI(t, env, pw+"\n", "user", "create", "--email", "dis@example.com", "--password-stdin", "--verified"); err != nil {
		t.Fatal(err)
	}
	var cl struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	runJSON(t, env, &cl, "client", "create", "--name", "first", "--first-party", "--grant-type", "password",
		"--grant-type", "refresh_token", "--scope", "openid offline_access")
	cfg := oauth2.Config{ClientID: cl.ClientID, ClientSecret: cl.ClientSecret, Scopes: []string{"openid", "offline_access"},
		Endpoint: oauth2.Endpoint{TokenURL: ts.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}}
	tok, err := cfg.PasswordCredentialsToken(ctx, "dis@example.com", pw)
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("password grant: %v", err)
	}
	runCLI(t, env, "", "user", "disable", "dis@example.com")
	runCLI(t, env, "", "user", "enable", "dis@example.com")
	_, err = cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if re, ok := err.(*oauth2.RetrieveError); !ok || re.ErrorCode != "invalid_grant" {
		t.Fatalf("refresh after disable+enable: %v", err)
	}
	if _, err := cfg.PasswordCredentialsToken(ctx, "dis@example.com", pw); err != nil {
		t.Fatalf("enabled user cannot log in: %v", err)
	}
}

// The CLI's other client-key flags, end to end: --jwks-uri registers a
// private_key_jwt client whose keys authd fetches (ES256 given with
// --token-auth-signing-alg, RS256 by default), and
// --id-token-signed-response-alg decides the alg of the client's ID tokens,
// which go-oidc verifies from discovery.
func TestCLI_JWKSURIAndIDTokenAlg(t *testing.T) {
	ctx := context.Background()
	e := newSecEnv(t)
	env := map[string]string{"AUTHD_DATABASE_URL": e.db.URL}
	tokenURL := e.URL + "/oauth2/token"
	type created struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
		Method       string `json:"token_endpoint_auth_method"`
		Alg          string `json:"token_endpoint_auth_signing_alg"`
		JWKSURI      string `json:"jwks_uri"`
		IDTokenAlg   string `json:"id_token_signed_response_alg"`
	}

	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, tc := range []struct {
		name, flagAlg string
		key           crypto.Signer
		alg           josev4.SignatureAlgorithm
	}{{"ES256", "ES256", ec, josev4.ES256}, {"RS256Default", "", rk, josev4.RS256}} {
		t.Run("JWKSURI/"+tc.name, func(t *testing.T) {
			keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(josev4.JSONWebKeySet{Keys: []josev4.JSONWebKey{{Key: tc.key.Public(), KeyID: "k1", Use: "sig"}}})
			}))
			t.Cleanup(keys.Close)
			args := []string{"client", "create", "--name", "fetched " + tc.name, "--grant-type", "client_credentials",
				"--scope", "introspect", "--jwks-uri", keys.URL}
			if tc.flagAlg != "" {
				args = append(args, "--token-auth-signing-alg", tc.flagAlg)
			}
			var cl created
			runJSON(t, env, &cl, args...)
			if cl.Method != "private_key_jwt" || cl.Alg != string(tc.alg) || cl.JWKSURI != keys.URL || cl.ClientSecret != "" {
				t.Fatalf("client create: %+v", cl)
			}
			cc := clientcredentials.Config{ClientID: cl.ClientID, TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams,
				Scopes: []string{"introspect"}, EndpointParams: url.Values{
					"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
					"client_assertion":      {signedAssertion(t, cl.ClientID, tokenURL, tc.key, tc.alg)},
				}}
			if tok, err := cc.Token(ctx); err != nil || tok.AccessToken == "" {
				t.Fatalf("private_key_jwt with keys from jwks_uri: %v", err)
			}
		})
	}

	e.mustUser("idtok@example.com")
	provider, err := oidc.NewProvider(ctx, e.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, flag, want string }{{"ES256", "ES256", "ES256"}, {"Default", "", "RS256"}} {
		t.Run("IDTokenAlg/"+tc.name, func(t *testing.T) {
			args := []string{"client", "create", "--name", "id token " + tc.name, "--redirect-uri", secRedirect,
				"--grant-type", "authorization_code", "--grant-type", "refresh_token", "--scope", "openid profile offline_access"}
			if tc.flag != "" {
				args = append(args, "--id-token-signed-response-alg", tc.flag)
			}
			var cl created
			runJSON(t, env, &cl, args...)
			if cl.IDTokenAlg != tc.flag {
				t.Fatalf("client create: %+v", cl)
			}
			raw, _ := e.tokens(e.browser(), cl.ClientID, cl.ClientSecret, "idtok@example.com")["id_token"].(string)
			idt, err := provider.Verifier(&oidc.Config{ClientID: cl.ClientID, SupportedSigningAlgs: []string{tc.want}}).Verify(ctx, raw)
			if err != nil || idt.Subject == "" {
				t.Fatalf("ID token signed with %s: %v", tc.want, err)
			}
			jws, err := josev4.ParseSigned(raw, []josev4.SignatureAlgorithm{josev4.ES256, josev4.RS256})
			if err != nil || jws.Signatures[0].Header.Algorithm != tc.want {
				t.Fatalf("ID token header: %v", err)
			}
		})
	}
	if _, err := runCLI(t, env, "", "client", "create", "--name", "bad alg", "--redirect-uri", secRedirect,
		"--grant-type", "authorization_code", "--scope", "openid", "--id-token-signed-response-alg", "HS256"); err == nil ||
		!strings.Contains(err.Error(), "id_token_signed_response_alg") {
		t.Fatalf("--id-token-signed-response-alg HS256: %v", err)
	}
}
