package ledger_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/authd/authd/internal/authn"
	"github.com/authd/authd/internal/httpx"
	"github.com/authd/authd/internal/problem"
	"github.com/authd/authd/ledger"
	"github.com/authd/authd/storage/storagetest"
)

// tokens fakes the token issuer (package oauth): fixed strings map to
// principals. Storage is real.
type tokens map[string]*authn.Principal

// testAudience is the API audience every test token carries.
const testAudience = "https://authd.test"

var _ authn.Verifier = tokens{}

func (ts tokens) VerifyAccessToken(_ context.Context, tok string) (*authn.Principal, error) {
	if p, ok := ts[tok]; ok {
		c := *p
		c.Audience = []string{testAudience}
		return &c, nil
	}
	return nil, authn.ErrInvalidToken
}

type env struct {
	*testing.T
	db    *storagetest.DB
	l     *ledger.Ledger
	reg   *prometheus.Registry
	url   string
	alice string // user ids
	bob   string
}

// newEnv serves the ledger behind a router built like cmd/authd's.
func newEnv(t *testing.T, opts ...ledger.HandlerOption) *env {
	db := storagetest.NewDB(t)
	e := &env{T: t, db: db, reg: prometheus.NewRegistry()}
	e.alice, e.bob = MustCreateUser(t, db.Pool), MustCreateUser(t, db.Pool)
	admin := MustCreateUser(t, db.Pool)
	user := func(id string, scopes ...string) *authn.Principal {
		return &authn.Principal{Subject: id, UserID: id, ClientID: "app", Scopes: scopes, Roles: []string{"user"}}
	}
	client := func(id string, scopes ...string) *authn.Principal {
		return &authn.Principal{Subject: id, ClientID: id, Scopes: scopes}
	}
	v := tokens{
		"alice":          user(e.alice, "openid", ledger.ScopeCreditsRead, ledger.ScopeCreditsSpend),
		"alice-readonly": user(e.alice, "openid", ledger.ScopeCreditsRead),
		"alice-noscope":  user(e.alice, "openid"),
		"bob":            user(e.bob, ledger.ScopeCreditsRead, ledger.ScopeCreditsSpend),
		"service":        client("svc", ledger.ScopeCreditsCharge),
		"service2":       client("svc2", ledger.ScopeCreditsCharge),
		"minter":         client("mint", ledger.ScopeCreditsGrant),
		"service-read":   client("svc-read", ledger.ScopeCreditsRead),
		"admin":          {Subject: admin, UserID: admin, ClientID: "console", Scopes: []string{"admin"}, Roles: []string{"user", "admin"}},
		"admin-noscope":  {Subject: admin, UserID: admin, ClientID: "console", Scopes: []string{"openid"}, Roles: []string{"user", "admin"}},
		"admin-client":   client("ops", "admin"),
		"fake-admin":     user(e.alice, "admin"), // scope without the role
	}
	h, err := ledger.NewHandler(db.Pool, zap.NewNop(), e.reg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	e.l = h.Ledger()
	r := mux.NewRouter()
	// The console is authd's own app: an admin's token is an admin's only
	// from a first-party client.
	g := &authn.Guard{Verifier: v, Audience: testAudience, Clients: firstPartyClients{"console": true}}
	tbl := authn.NewTable()
	h.Mount(authn.NewRouter(r.PathPrefix("/api/v1").Subrouter(), g, tbl),
		authn.NewRouter(r.PathPrefix("/admin/v1").Subrouter(), g, tbl))
	srv := httptest.NewServer(httpx.Observe(zap.NewNop(), nil)(r))
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

// do sends a request and decodes the JSON answer (nil if none).
func (e *env) do(method, path, token, body string) (int, http.Header, map[string]any) {
	e.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			e.Fatalf("%s %s: %d, body not JSON: %q", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, resp.Header, m
}

func (e *env) expect(method, path, token, body string, status int) map[string]any {
	e.Helper()
	got, hdr, m := e.do(method, path, token, body)
	if got != status {
		e.Fatalf("%s %s as %q: status %d, want %d; body %v", method, path, token, got, status, m)
	}
	if status >= 400 && hdr.Get("Content-Type") != "application/problem+json" {
		e.Fatalf("%s %s: error Content-Type %q", method, path, hdr.Get("Content-Type"))
	}
	return m
}

func (e *env) expectProblem(method, path, token, body string, status int, code string) map[string]any {
	e.Helper()
	m := e.expect(method, path, token, body, status)
	if typ, _ := m["type"].(string); typ != problem.TypePrefix+code || !strings.HasSuffix(typ, code) {
		e.Fatalf("%s %s: problem type %q, want suffix %q", method, path, typ, code)
	}
	return m
}

func (e *env) countTransactions() int {
	var n int
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM ledger_transactions`).Scan(&n); err != nil {
		e.Fatal(err)
	}
	return n
}

func spendBody(amount, ref string) string {
	return fmt.Sprintf(`{"amount": %s, "reference": %q, "description": "test"}`, amount, ref)
}

func TestHandler_SpendGrantHistoryFlow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	g := e.expect("POST", "/api/v1/users/"+e.alice+"/credits/grant", "minter", `{"amount": 100, "reference": "welcome", "description": "sign-up bonus"}`, 201)
	for _, k := range []string{"id", "kind", "amount", "reference", "description", "balance_after", "created_at", "balance", "actor"} {
		if _, ok := g[k]; !ok {
			t.Fatalf("grant response lacks %q: %v", k, g)
		}
	}
	if g["kind"] != "grant" || g["amount"] != float64(100) || g["balance_after"] != float64(100) {
		t.Fatalf("grant = %v", g)
	}
	if a := g["actor"].(map[string]any); a["type"] != "client" || a["id"] != "mint" {
		t.Fatalf("grant actor = %v", a)
	}
	s := e.expect("POST", "/api/v1/credits/spend", "alice", spendBody("30", "order-1"), 201)
	if s["kind"] != "spend" || s["balance_after"] != float64(70) || s["balance"] != float64(70) || s["request_id"] == "" {
		t.Fatalf("spend = %v", s)
	}
	e.expect("POST", "/api/v1/users/"+e.alice+"/credits/spend", "service", spendBody("5", "svc-order"), 201)
	if b := e.expect("GET", "/api/v1/credits", "alice-readonly", "", 200); b["balance"] != float64(65) || len(b) != 1 {
		t.Fatalf("balance = %v, want {\"balance\": 65}", b)
	}
	if b := e.expect("GET", "/api/v1/users/"+e.alice+"/credits", "service", "", 200); b["balance"] != float64(65) {
		t.Fatalf("service balance = %v", b)
	}
	h := e.expect("GET", "/api/v1/credits/transactions?limit=2", "alice", "", 200)
	items := h["items"].([]any)
	if len(items) != 2 || items[0].(map[string]any)["reference"] != "svc-order" || h["next_cursor"] == nil {
		t.Fatalf("history page 1 = %v", h)
	}
	h = e.expect("GET", "/api/v1/credits/transactions?limit=2&cursor="+h["next_cursor"].(string), "alice", "", 200)
	if items := h["items"].([]any); len(items) != 1 || items[0].(map[string]any)["kind"] != "grant" || h["next_cursor"] != nil {
		t.Fatalf("history page 2 = %v", h)
	}
	if v, ok := h["next_cursor"]; !ok || v != nil {
		t.Fatalf("last page must have next_cursor: null, got %v", h)
	}
	h = e.expect("GET", "/api/v1/users/"+e.alice+"/credits/transactions?kind=spend", "service", "", 200)
	if len(h["items"].([]any)) != 2 {
		t.Fatalf("spends = %v", h)
	}
	if got := testutil.ToFloat64(counter(t, e.reg, "authd_ledger_credits_spent_total")); got != 35 {
		t.Fatalf("credits spent metric = %v, want 35", got)
	}
	if got := testutil.ToFloat64(counter(t, e.reg, "authd_ledger_credits_granted_total")); got != 100 {
		t.Fatalf("credits granted metric = %v, want 100", got)
	}
	MustVerifyClean(t, e.l)
}

// counter finds a registered unlabelled metric by name.
func counter(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: "copy"}, func() float64 {
				return mf.GetMetric()[0].GetCounter().GetValue()
			})
		}
	}
	t.Fatalf("metric %s not registered", name)
	return nil
}

func TestHandler_WrongScopeForbidden(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	MustGrant(t, e.l, e.alice, 10)
	tests := []struct {
		name, method, path, token, body string
		status                          int
	}{
		{"ErrNoToken", "GET", "/api/v1/credits", "", "", 401},
		{"ErrBadToken", "GET", "/api/v1/credits", "forged", "", 401},
		{"ErrReadWithoutScope", "GET", "/api/v1/credits", "alice-noscope", "", 403},
		{"ErrHistoryWithoutScope", "GET", "/api/v1/credits/transactions", "alice-noscope", "", 403},
		{"ErrSpendWithReadScope", "POST", "/api/v1/credits/spend", "alice-readonly", spendBody("1", "x"), 403},
		{"ErrClientTokenHasNoOwnAccount", "GET", "/api/v1/credits", "service-read", "", 403},
		{"ErrUserGrantsSelf", "POST", "/api/v1/users/{alice}/credits/grant", "alice", spendBody("1", "x"), 403},
		{"ErrServiceWithoutCreditsCharge", "POST", "/api/v1/users/{alice}/credits/spend", "service-read", spendBody("1", "x"), 403},
		{"ErrChargeScopeCannotMint", "POST", "/api/v1/users/{alice}/credits/grant", "service", spendBody("1", "x"), 403},
		{"ErrGrantScopeCannotCharge", "POST", "/api/v1/users/{alice}/credits/spend", "minter", spendBody("1", "x"), 403},
		{"ErrChargerRefunds", "POST", "/admin/v1/users/{alice}/credits/refund", "service", `{"transaction_id":"x","reference":"r"}`, 403},
		{"ErrAdminGrantAsUser", "POST", "/admin/v1/users/{alice}/credits/grant", "alice", spendBody("1", "x"), 403},
		{"ErrAdminGrantAsService", "POST", "/admin/v1/users/{alice}/credits/grant", "service", spendBody("1", "x"), 403},
		{"ErrAdminScopeWithoutRole", "POST", "/admin/v1/users/{alice}/credits/adjust", "fake-admin", `{"amount":1,"reference":"x","reason":"r","direction":"credit"}`, 403},
		{"ErrAdminRoleWithoutScope", "POST", "/admin/v1/users/{alice}/credits/grant", "admin-noscope", spendBody("1", "x"), 403},
		{"ErrVerifyAsUser", "GET", "/admin/v1/ledger/verify", "alice", "", 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.T = t
			path := strings.ReplaceAll(tc.path, "{alice}", e.alice)
			code := "forbidden"
			if tc.status == 401 {
				code = "unauthorized"
			}
			e.expectProblem(tc.method, path, tc.token, tc.body, tc.status, code)
		})
	}
	e.T = t
	if n := e.countTransactions(); n != 1 {
		t.Fatalf("%d transactions, want only the setup grant", n)
	}
}

func TestHandler_OtherUsersAccountForbidden(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	MustGrant(t, e.l, e.bob, 10)
	e.expectProblem("GET", "/api/v1/users/"+e.bob+"/credits", "alice", "", 403, "forbidden")
	e.expectProblem("GET", "/api/v1/users/"+e.bob+"/credits/transactions", "alice", "", 403, "forbidden")
	e.expectProblem("POST", "/api/v1/users/"+e.bob+"/credits/spend", "alice", spendBody("1", "steal"), 403, "forbidden")
	e.expectProblem("POST", "/admin/v1/users/"+e.bob+"/credits/adjust", "alice", `{"amount":10,"reference":"x","reason":"r","direction":"debit"}`, 403, "forbidden")
	if b := MustBalance(t, e.l, e.bob); b != 10 {
		t.Fatalf("bob's balance = %d, want 10", b)
	}
	// The service path is for services and admins, even on a user's own account.
	e.expectProblem("GET", "/api/v1/users/"+strings.ToUpper(e.bob)+"/credits", "bob", "", 403, "forbidden")
	e.expectProblem("POST", "/api/v1/users/"+e.bob+"/credits/spend", "bob", spendBody("1", "own"), 403, "forbidden")
	if b := MustBalance(t, e.l, e.bob); b != 10 {
		t.Fatalf("bob's balance = %d, want 10", b)
	}
}

func TestHandler_UnknownUserNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, id := range []string{"00000000-0000-4000-8000-000000000000", "not-a-uuid", "1"} {
		e.expectProblem("GET", "/api/v1/users/"+id+"/credits", "service", "", 404, "not_found")
		e.expectProblem("GET", "/api/v1/users/"+id+"/credits/transactions", "service", "", 404, "not_found")
		e.expectProblem("POST", "/api/v1/users/"+id+"/credits/grant", "minter", spendBody("1", "x"), 404, "not_found")
		e.expectProblem("POST", "/admin/v1/users/"+id+"/credits/grant", "admin", spendBody("1", "x"), 404, "not_found")
	}
	if n := e.countTransactions(); n != 0 {
		t.Fatalf("%d transactions written", n)
	}
}

func TestHandler_BadInputRejectedAndNothingWritten(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	MustGrant(t, e.l, e.alice, 100)
	desc := strings.Repeat("d", 10*1024)
	tests := []struct {
		name, body, field string
	}{
		{"ErrAmountZero", spendBody("0", "a"), "amount"},
		{"ErrAmountNegative", spendBody("-5", "a"), "amount"},
		{"ErrAmountFraction", spendBody("1.5", "a"), "amount"},
		{"ErrAmountIntegralFraction", spendBody("2.0", "a"), "amount"},
		{"ErrAmountExponent", spendBody("1e30", "a"), "amount"},
		{"ErrAmountSmallExponent", spendBody("1e3", "a"), "amount"},
		{"ErrAmountString", spendBody(`"5"`, "a"), "amount"},
		{"ErrAmountAboveInt64", spendBody("9223372036854775808", "a"), "amount"},
		{"ErrAmountNull", spendBody("null", "a"), "amount"},
		{"ErrAmountBool", spendBody("true", "a"), "amount"},
		{"ErrAmountObject", spendBody("{}", "a"), "amount"},
		{"ErrAmountMissing", `{"reference": "a"}`, "amount"},
		{"ErrReferenceMissing", `{"amount": 1}`, "reference"},
		{"ErrReferenceEmpty", spendBody("1", ""), "reference"},
		{"ErrReferenceTooLong", spendBody("1", strings.Repeat("r", 129)), "reference"},
		{"ErrReferenceNotString", `{"amount": 1, "reference": 7}`, "reference"},
		{"ErrDescriptionTooLong", fmt.Sprintf(`{"amount": 1, "reference": "a", "description": %q}`, desc), "description"},
		{"ErrUnknownField", `{"amount": 1, "reference": "a", "user_id": "someone"}`, "user_id"},
		{"ErrMalformed", `{"amount": 1,`, ""},
		{"ErrTrailingData", `{"amount": 1, "reference": "a"} {}`, ""},
		{"ErrEmpty", ``, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.T = t
			m := e.expectProblem("POST", "/api/v1/credits/spend", "alice", tc.body, 400, "invalid_request")
			if f, _ := m["field"].(string); f != tc.field {
				t.Fatalf("field = %q, want %q (%v)", f, tc.field, m)
			}
		})
	}
	e.T = t
	e.expectProblem("GET", "/api/v1/credits/transactions?limit=x", "alice", "", 400, "invalid_request")
	e.expectProblem("GET", "/api/v1/credits/transactions?limit=1000", "alice", "", 400, "invalid_request")
	e.expectProblem("GET", "/api/v1/credits/transactions?cursor=bogus", "alice", "", 400, "invalid_request")
	e.expectProblem("GET", "/api/v1/credits/transactions?kind=steal", "alice", "", 400, "invalid_request")
	e.expectProblem("POST", "/admin/v1/users/"+e.alice+"/credits/adjust", "admin", `{"amount": 1, "reference": "adj", "direction": "credit"}`, 400, "invalid_request")
	e.expectProblem("POST", "/admin/v1/users/"+e.alice+"/credits/adjust", "admin", `{"amount": 1, "reference": "adj", "reason": "x", "direction": "sideways"}`, 400, "invalid_request")
	if n := e.countTransactions(); n != 1 {
		t.Fatalf("%d transactions, want only the setup grant", n)
	}
	if b := MustBalance(t, e.l, e.alice); b != 100 {
		t.Fatalf("balance = %d, want 100", b)
	}
}

func TestHandler_ReferenceReplayAndConflict(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	MustGrant(t, e.l, e.alice, 10)
	first := e.expect("POST", "/api/v1/credits/spend", "alice", spendBody("4", "order-9"), 201)
	again := e.expect("POST", "/api/v1/credits/spend", "alice", spendBody("4", "order-9"), 200)
	if again["id"] != first["id"] || again["replayed"] != true || again["balance"] != float64(6) {
		t.Fatalf("replay = %v, first = %v", again, first)
	}
	// The same reference through the service path is the same request.
	if svc := e.expect("POST", "/api/v1/users/"+e.alice+"/credits/spend", "service", spendBody("4", "order-9"), 200); svc["id"] != first["id"] {
		t.Fatalf("service replay = %v", svc)
	}
	e.expectProblem("POST", "/api/v1/credits/spend", "alice", spendBody("5", "order-9"), 409, "reference_conflict")
	e.expectProblem("POST", "/api/v1/credits/spend", "alice", `{"amount": 4, "reference": "order-9", "description": "other"}`, 409, "reference_conflict")
	if b := MustBalance(t, e.l, e.alice); b != 6 {
		t.Fatalf("balance = %d, want 6", b)
	}
}

func TestHandler_InsufficientCredits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	MustGrant(t, e.l, e.alice, 3)
	m := e.expectProblem("POST", "/api/v1/credits/spend", "alice", spendBody("4", "too-much"), 409, "insufficient_credits")
	if m["balance"] != float64(3) {
		t.Fatalf("problem = %v, want balance 3", m)
	}
	if n := e.countTransactions(); n != 1 {
		t.Fatalf("%d transactions, want 1", n)
	}
	if got := testutil.ToFloat64(counter(t, e.reg, "authd_ledger_insufficient_credits_total")); got != 1 {
		t.Fatalf("insufficient metric = %v", got)
	}
	var audited int
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_events WHERE type = 'credits.spent' AND outcome = 'failure' AND target_id = $1`, e.alice).Scan(&audited); err != nil || audited != 1 {
		t.Fatalf("failure audit events = %d, %v", audited, err)
	}
}

func TestHandler_AdminGrantRefundAdjustVerify(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	g := e.expect("POST", "/admin/v1/users/"+e.alice+"/credits/grant", "admin", spendBody("50", "promo"), 201)
	if a := g["actor"].(map[string]any); a["type"] != "admin" {
		t.Fatalf("actor = %v", a)
	}
	e.expect("POST", "/admin/v1/users/"+e.alice+"/credits/grant", "admin-client", spendBody("5", "ops-grant"), 201)
	s := e.expect("POST", "/api/v1/credits/spend", "alice", spendBody("20", "order"), 201)
	refund := func(amount, ref string) string {
		return fmt.Sprintf(`{"amount": %s, "reference": %q, "spend_id": %q}`, amount, ref, s["id"])
	}
	r := e.expect("POST", "/admin/v1/users/"+e.alice+"/credits/refund", "admin", refund("15", "rf-1"), 201)
	if r["kind"] != "refund" || r["refund_of"] != s["id"] || r["balance_after"] != float64(50) {
		t.Fatalf("refund = %v", r)
	}
	e.expectProblem("POST", "/admin/v1/users/"+e.alice+"/credits/refund", "admin", refund("6", "rf-2"), 409, "refund_exceeds_spend")
	e.expectProblem("POST", "/admin/v1/users/"+e.alice+"/credits/refund", "admin", `{"amount": 1, "reference": "rf-3"}`, 400, "invalid_request")
	e.expectProblem("POST", "/admin/v1/users/"+e.alice+"/credits/refund", "admin",
		`{"amount": 1, "reference": "rf-4", "spend_id": "00000000-0000-4000-8000-000000000000"}`, 422, "spend_not_found")
	a := e.expect("POST", "/admin/v1/users/"+e.alice+"/credits/adjust", "admin",
		`{"amount": 10, "reference": "fix-1", "direction": "debit", "reason": "duplicate promo"}`, 201)
	if a["direction"] != "debit" || a["reason"] != "duplicate promo" || a["balance_after"] != float64(40) {
		t.Fatalf("adjust = %v", a)
	}
	e.expectProblem("POST", "/admin/v1/users/"+e.alice+"/credits/adjust", "admin",
		`{"amount": 41, "reference": "fix-2", "direction": "debit", "reason": "too much"}`, 409, "insufficient_credits")
	if b := e.expect("GET", "/admin/v1/users/"+e.alice+"/credits", "admin", "", 200); b["balance"] != float64(40) {
		t.Fatalf("admin balance view = %v", b)
	}
	rep := e.expect("GET", "/admin/v1/ledger/verify", "admin", "", 200)
	if rep["ok"] != true || rep["transactions"] != float64(5) {
		t.Fatalf("verify = %v", rep)
	}
	e.expect("GET", "/admin/v1/ledger/verify", "admin-client", "", 200)
}

// firstPartyClients is the client directory of the tests: the clients
// flagged first-party.
type firstPartyClients map[string]bool

func (c firstPartyClients) IsFirstParty(_ context.Context, id string) (bool, error) {
	return c[id], nil
}
