package resource_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authd/authd/resource"
)

// fakeLedger answers the credit API like authd: idempotent by reference,
// 409 problems, and a scripted number of 503s before each answer.
type fakeLedger struct {
	srv      *httptest.Server
	mu       sync.Mutex
	balance  int64
	seen     map[string]map[string]any // reference -> transaction
	failNext int                       // answer 503 this many times
	requests atomic.Int64
	tokens   atomic.Int64
	rejectTk string // a service token to refuse with 401
}

func newFakeLedger(t *testing.T, balance int64) *fakeLedger {
	l := &fakeLedger{balance: balance, seen: map[string]map[string]any{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": l.srv.URL, "token_endpoint": l.srv.URL + "/oauth2/token"})
	})
	mux.HandleFunc("POST /oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		n := l.tokens.Add(1)
		if id, secret, _ := r.BasicAuth(); id != "svc" || secret != "secret" || r.PostFormValue("scope") != "credits:charge" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "svc-token-" + string(rune('0'+n)), "expires_in": 900})
	})
	spend := func(w http.ResponseWriter, r *http.Request) {
		l.requests.Add(1)
		l.mu.Lock()
		defer l.mu.Unlock()
		if tk := r.Header.Get("Authorization"); tk == "Bearer "+l.rejectTk {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if l.failNext > 0 {
			l.failNext--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var b struct {
			Amount      int64  `json:"amount"`
			Reference   string `json:"reference"`
			Description string `json:"description"`
		}
		_ = json.NewDecoder(r.Body).Decode(&b)
		problem := func(code string, extra map[string]any) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusConflict)
			doc := map[string]any{"type": "urn:authd:problem:" + code, "title": code, "status": 409}
			for k, v := range extra {
				doc[k] = v
			}
			_ = json.NewEncoder(w).Encode(doc)
		}
		if tx, ok := l.seen[b.Reference]; ok {
			if tx["amount"] != b.Amount || tx["description"] != b.Description {
				problem("reference_conflict", nil)
				return
			}
			tx["replayed"] = true
			_ = json.NewEncoder(w).Encode(tx)
			return
		}
		if l.balance < b.Amount {
			problem("insufficient_credits", map[string]any{"balance": l.balance})
			return
		}
		l.balance -= b.Amount
		tx := map[string]any{"id": "tx-" + b.Reference, "kind": "spend", "amount": b.Amount, "reference": b.Reference,
			"description": b.Description, "balance_after": l.balance}
		l.seen[b.Reference] = tx
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(tx)
	}
	mux.HandleFunc("POST /api/v1/credits/spend", spend)
	mux.HandleFunc("POST /api/v1/users/{id}/credits/spend", spend)
	mux.HandleFunc("GET /api/v1/credits", func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		defer l.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]int64{"balance": l.balance})
	})
	l.srv = httptest.NewServer(mux)
	t.Cleanup(l.srv.Close)
	return l
}

func mustCredits(t *testing.T, l *fakeLedger) *resource.Credits {
	t.Helper()
	c, err := resource.NewCredits(resource.CreditsConfig{Issuer: l.srv.URL, ClientID: "svc", ClientSecret: "secret",
		Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCredits_Spend(t *testing.T) {
	ctx := context.Background()
	t.Run("OK_RetriesTransientFailures", func(t *testing.T) {
		l := newFakeLedger(t, 10)
		l.failNext = 2
		tx, err := mustCredits(t, l).Spend(ctx, resource.AsUser("user-token"), 3, "order-1", "an order")
		if err != nil {
			t.Fatal(err)
		}
		if tx.ID != "tx-order-1" || tx.BalanceAfter != 7 || l.requests.Load() != 3 {
			t.Errorf("tx %+v after %d requests", tx, l.requests.Load())
		}
	})
	t.Run("OK_RepeatIsReplayed", func(t *testing.T) {
		l := newFakeLedger(t, 10)
		c := mustCredits(t, l)
		a, err := c.Spend(ctx, resource.AsUser("t"), 3, "order-1", "x")
		if err != nil {
			t.Fatal(err)
		}
		b, err := c.Spend(ctx, resource.AsUser("t"), 3, "order-1", "x")
		if err != nil {
			t.Fatal(err)
		}
		if a.ID != b.ID || !b.Replayed || b.BalanceAfter != 7 {
			t.Errorf("repeat: %+v then %+v", a, b)
		}
	})
	t.Run("ErrInsufficientCredits", func(t *testing.T) {
		l := newFakeLedger(t, 1)
		_, err := mustCredits(t, l).Spend(ctx, resource.AsUser("t"), 2, "order-1", "x")
		var apiErr *resource.APIError
		if !errors.Is(err, resource.ErrInsufficientCredits) || !errors.As(err, &apiErr) || *apiErr.Balance != 1 {
			t.Fatalf("err = %v", err)
		}
		if l.requests.Load() != 1 {
			t.Errorf("a refusal was retried: %d requests", l.requests.Load())
		}
	})
	t.Run("ErrReferenceConflict", func(t *testing.T) {
		l := newFakeLedger(t, 10)
		c := mustCredits(t, l)
		if _, err := c.Spend(ctx, resource.AsUser("t"), 1, "order-1", "x"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Spend(ctx, resource.AsUser("t"), 2, "order-1", "x"); !errors.Is(err, resource.ErrReferenceConflict) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("ErrUnavailableAfterMaxAttempts", func(t *testing.T) {
		l := newFakeLedger(t, 10)
		l.failNext = 100
		_, err := mustCredits(t, l).Spend(ctx, resource.AsUser("t"), 1, "order-1", "x")
		if !errors.Is(err, resource.ErrUnavailable) || l.requests.Load() != 4 {
			t.Fatalf("err = %v after %d requests", err, l.requests.Load())
		}
	})
	t.Run("ErrNoReference", func(t *testing.T) {
		l := newFakeLedger(t, 10)
		if _, err := mustCredits(t, l).Spend(ctx, resource.AsUser("t"), 1, " ", "x"); err == nil || l.requests.Load() != 0 {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("OK_ServiceTokenRenewedOn401", func(t *testing.T) {
		l := newFakeLedger(t, 10)
		c := mustCredits(t, l)
		if _, err := c.Spend(ctx, resource.ForUser("u1"), 1, "a", "x"); err != nil {
			t.Fatal(err)
		}
		l.mu.Lock()
		l.rejectTk = "svc-token-1"
		l.mu.Unlock()
		if _, err := c.Spend(ctx, resource.ForUser("u1"), 1, "b", "x"); err != nil {
			t.Fatal(err)
		}
		if l.tokens.Load() != 2 {
			t.Errorf("token endpoint called %d times, want 2", l.tokens.Load())
		}
	})
}

func TestCredits_Balance(t *testing.T) {
	l := newFakeLedger(t, 42)
	n, err := mustCredits(t, l).Balance(context.Background(), resource.AsUser("t"))
	if err != nil || n != 42 {
		t.Fatalf("Balance = %d, %v", n, err)
	}
}
