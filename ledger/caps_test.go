package ledger_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/authd/authd/ledger"
	"github.com/authd/authd/storage/storagetest"
)

// capSource is a fake client registry: caps by client id.
type capSource struct {
	mu   sync.Mutex
	caps map[string]ledger.ChargeCaps
}

var _ ledger.CapSource = (*capSource)(nil)

func (s *capSource) ChargeCaps(_ context.Context, clientID string) (ledger.ChargeCaps, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.caps[clientID], nil
}

func (s *capSource) set(clientID string, c ledger.ChargeCaps) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.caps[clientID] = c
}

func newCapsEnv(t *testing.T, caps map[string]ledger.ChargeCaps) (*env, *capSource) {
	src := &capSource{caps: caps}
	return newEnv(t, ledger.WithCapSource(src)), src
}

func (e *env) charge(token, amount, ref string, status int) map[string]any {
	e.Helper()
	return e.expect("POST", "/api/v1/users/"+e.alice+"/credits/spend", token, spendBody(amount, ref), status)
}

func (e *env) chargedBy(client string) int64 {
	e.Helper()
	var n int64
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT COALESCE(sum(amount), 0) FROM ledger_transactions
		WHERE kind = 'spend' AND client_id = $1`, client).Scan(&n); err != nil {
		e.Fatal(err)
	}
	return n
}

func TestCharge_PerSpendCapRefusesOneSpend(t *testing.T) {
	t.Parallel()
	e, _ := newCapsEnv(t, map[string]ledger.ChargeCaps{"svc": {PerSpend: 10}})
	MustGrant(t, e.l, e.alice, 100)
	m := e.expectProblem("POST", "/api/v1/users/"+e.alice+"/credits/spend", "service", spendBody("11", "big"), http.StatusConflict, "charge_cap_exceeded")
	if m["cap"] != ledger.CapPerSpend || m["limit"] != float64(10) || m["amount"] != float64(11) {
		t.Fatalf("problem = %v, want cap per_spend, limit 10, amount 11", m)
	}
	if s := e.charge("service", "10", "fits", http.StatusCreated); s["client_id"] != "svc" || s["balance"] != float64(90) {
		t.Fatalf("charge = %v", s)
	}
	// Caps bind services only: the user's own spend through an app, and an
	// admin, are not capped; the app is recorded as the client.
	if s := e.expect("POST", "/api/v1/credits/spend", "alice", spendBody("50", "own"), http.StatusCreated); s["client_id"] != "app" {
		t.Fatalf("own spend = %v, want client_id app", s)
	}
	e.expect("POST", "/api/v1/users/"+e.alice+"/credits/spend", "admin-client", spendBody("20", "ops"), http.StatusCreated)
	if b := MustBalance(t, e.l, e.alice); b != 20 {
		t.Fatalf("balance = %d, want 20", b)
	}
	var n int
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_events
		WHERE type = 'credits.spent' AND outcome = 'failure' AND target_id = $1
		  AND details->>'error' = 'charge_cap_exceeded' AND details->>'cap' = 'per_spend' AND details->>'client_id' = 'svc'`, e.alice).Scan(&n); err != nil || n != 1 {
		t.Fatalf("audit events of the refusal = %d, %v; want 1", n, err)
	}
	MustVerifyClean(t, e.l)
}

// TestCharge_DailyCapNeverExceededUnderConcurrency races many charges of
// one client to one user; the cap is decided under the account lock, so
// exactly the charges that fit are made, whichever path each takes.
func TestCharge_DailyCapNeverExceededUnderConcurrency(t *testing.T) {
	t.Parallel()
	const perDay, amount, tries = 50, 5, 40
	e, _ := newCapsEnv(t, map[string]ledger.ChargeCaps{"svc": {PerUserPerDay: perDay}, "svc2": {PerUserPerDay: perDay}})
	MustGrant(t, e.l, e.alice, 10_000)
	var wg sync.WaitGroup
	codes := make([]int, tries)
	for i := range tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _, m := e.do("POST", "/api/v1/users/"+e.alice+"/credits/spend", "service", spendBody(fmt.Sprint(amount), fmt.Sprintf("race-%d", i)))
			if code == http.StatusConflict && m["cap"] != ledger.CapPerUserPerDay {
				t.Errorf("409 %v, want cap per_user_per_day", m)
			}
			codes[i] = code
		}()
	}
	wg.Wait()
	made := 0
	for _, c := range codes {
		switch c {
		case http.StatusCreated:
			made++
		case http.StatusConflict:
		default:
			t.Fatalf("status %d", c)
		}
	}
	if made != perDay/amount || e.chargedBy("svc") != perDay {
		t.Fatalf("%d charges made, %d charged; want %d and %d", made, e.chargedBy("svc"), perDay/amount, perDay)
	}
	// The cap is per client: another service still charges.
	e.charge("service2", "5", "other-client", http.StatusCreated)
	MustVerifyClean(t, e.l)
}

func TestCharge_ReplayAnsweredAfterCapReached(t *testing.T) {
	t.Parallel()
	e, src := newCapsEnv(t, map[string]ledger.ChargeCaps{"svc": {PerUserPerDay: 10}})
	MustGrant(t, e.l, e.alice, 100)
	first := e.charge("service", "10", "order-1", http.StatusCreated)
	e.expectProblem("POST", "/api/v1/users/"+e.alice+"/credits/spend", "service", spendBody("1", "order-2"), http.StatusConflict, "charge_cap_exceeded")
	// The day's cap is reached, and a lower per-spend cap came since: the
	// same request is still answered with the charge it made.
	src.set("svc", ledger.ChargeCaps{PerSpend: 5, PerUserPerDay: 10})
	again := e.charge("service", "10", "order-1", http.StatusOK)
	if again["id"] != first["id"] || again["replayed"] != true {
		t.Fatalf("replay = %v, want transaction %v replayed", again, first["id"])
	}
	if b := MustBalance(t, e.l, e.alice); b != 90 {
		t.Fatalf("balance = %d, want 90", b)
	}
}

func TestLedger_ChargeRefusesCapsItCannotApply(t *testing.T) {
	t.Parallel()
	db := storagetest.NewDB(t)
	l := ledger.New(db.Pool, nil)
	u := MustCreateUser(t, db.Pool)
	MustGrant(t, l, u, 10)
	client := ledger.Origin{Actor: ledger.Actor{Type: ledger.ActorClient, ID: "svc"}, ClientID: "svc"}
	for name, c := range map[string]struct {
		origin ledger.Origin
		caps   ledger.ChargeCaps
	}{
		"ErrNegativeCap":    {client, ledger.ChargeCaps{PerSpend: -1}},
		"ErrNoClient":       {ledger.Origin{Actor: client.Actor}, ledger.ChargeCaps{PerUserPerDay: 5}},
		"ErrNotAClientKind": {testOrigin, ledger.ChargeCaps{PerSpend: 5}},
	} {
		if _, err := l.Charge(context.Background(), ledger.Posting{UserID: u, Amount: 1, Reference: ref(name), Origin: c.origin}, c.caps); err == nil {
			t.Errorf("%s: charged", name)
		}
	}
	if b := MustBalance(t, l, u); b != 10 {
		t.Fatalf("balance = %d, want 10", b)
	}
}
