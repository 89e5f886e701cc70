package reliability

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// KeyPickup bounds how long a replica takes to serve a key rotated
// elsewhere: oauth/keys' poll interval (5s) plus a second for the poll and
// the request itself.
const KeyPickup = 5*time.Second + time.Second

// ReplicaOptions sizes the multi-replica scenario.
type ReplicaOptions struct {
	Replicas      int // 3
	Spends        int // concurrent spends against a balance of Spends*2/3 (150)
	Registrations int // spread over the replicas (30)
}

// Replicas starts several `authd serve` on one database and checks that they
// act as one server: a token issued by A introspects on the others; a
// refresh token rotated on A is idempotent within the reuse window and
// reuse-detected after it on B (the family dies everywhere); a key rotated
// by `authd keys rotate` is in every replica's JWKS within KeyPickup;
// concurrent spends spread over all replicas never overdraw and leave the
// ledger exact; and competing outbox workers deliver every event, with
// duplicates counted.
func Replicas(ctx context.Context, env Env, o ReplicaOptions) *Report {
	rep := &Report{Name: "replicas on one database"}
	start := time.Now()
	defer func() { rep.Duration = time.Since(start) }()
	o.Replicas, o.Spends, o.Registrations = max(o.Replicas, 3), max(o.Spends, 150), max(o.Registrations, 30)

	st, err := StartStage(ctx, env, StageOptions{Replicas: o.Replicas, Peers: true, Extra: []string{"AUTHD_REFRESH_REUSE_WINDOW=2s"},
		Fixture: true, Users: 2})
	defer st.Close()
	if err != nil {
		rep.Problem("%v", err)
		return rep
	}
	srvs, fix, peers, key := st.Servers, st.Fix, st.Peers, st.Key
	A := srvs[0]
	rec := &Recorder{}
	c := NewClient(10*time.Second, false)
	call := func(op string, s *Server, fn func() Answer) Answer {
		t0 := time.Now()
		a := fn()
		rec.Record(op, s.Name, t0, a, "", "")
		return a
	}

	// A token issued by A is active on every replica.
	tok, a := ClientCredentials(ctx, c, A.URL, fix.SvcID, fix.SvcSecret, "credits:charge credits:grant introspect")
	rec.Record("token", A.Name, time.Now(), a, "", "")
	if !a.OK() {
		rep.Problem("token from A: %s", a)
		return rep
	}
	for _, s := range srvs[1:] {
		var active bool
		call("introspect", s, func() Answer {
			var a Answer
			active, a = Introspect(ctx, c, s.URL, fix.SvcID, fix.SvcSecret, tok.AccessToken)
			return a
		})
		if !active {
			rep.Problem("a token issued by %s is not active on %s", A.Name, s.Name)
		}
	}

	replicaRefresh(ctx, rep, rec, c, fix, srvs)
	replicaKeys(ctx, rep, env, key, c, srvs, fix)
	replicaSpends(ctx, rep, rec, env, key, fix, tok.AccessToken, srvs, o.Spends)

	// Registrations spread over the replicas: every event delivered by the
	// competing workers, duplicates counted.
	var wg sync.WaitGroup
	rc := NewClient(30*time.Second, true)
	for i := range o.Registrations {
		s := srvs[i%len(srvs)]
		wg.Go(func() {
			email := fmt.Sprintf("replica-%s@example.test", RandomID())
			t0 := time.Now()
			a := Register(ctx, rc, s.URL, email, "reliable "+RandomID())
			if x := rec.Record("register", s.Name, t0, a, email, ""); x.Status != http.StatusCreated {
				rep.Problem("registration on %s: %s", s.Name, a)
			}
		})
	}
	wg.Wait()
	peers.WaitDelivered(ctx, env.DatabaseURL, 45*time.Second, rep)
	if rep.Dups > 0 {
		rep.Problem("competing workers delivered %d outbox rows more than once without any fault", rep.Dups)
	}
	CheckUsers(ctx, env.DatabaseURL, "replica-%", rep)
	rep.Count(rec.All())
	return rep
}

func replicaRefresh(ctx context.Context, rep *Report, rec *Recorder, c *http.Client, fix *Fixture, srvs []*Server) {
	A, B, C := srvs[0], srvs[1], srvs[2%len(srvs)]
	u := fix.Users[0]
	t0, a := PasswordGrant(ctx, c, A.URL, fix.AppID, fix.AppSecret, u.Email, u.Password, "offline_access credits:read")
	rec.Record("login", A.Name, time.Now(), a, "", u.ID)
	if !a.OK() || t0.RefreshToken == "" {
		rep.Problem("password grant on A: %s", a)
		return
	}
	t1, a := Refresh(ctx, c, A.URL, fix.AppID, fix.AppSecret, t0.RefreshToken)
	rec.Record("refresh", A.Name, time.Now(), a, "", u.ID)
	if !a.OK() {
		rep.Problem("refresh on A: %s", a)
		return
	}
	// Within the reuse window another replica returns the same pair.
	again, a := Refresh(ctx, c, B.URL, fix.AppID, fix.AppSecret, t0.RefreshToken)
	rec.Record("refresh", B.Name, time.Now(), a, "", u.ID)
	if !a.OK() || again.RefreshToken != t1.RefreshToken {
		rep.Problem("retrying a refresh on B within the reuse window: %s (same pair: %v)", a, again.RefreshToken == t1.RefreshToken)
	}
	// After it, reuse on C is detected and kills the family on A too.
	var last Answer
	detected := WaitFor(ctx, 15*time.Second, func() bool {
		_, last = Refresh(ctx, c, C.URL, fix.AppID, fix.AppSecret, t0.RefreshToken)
		return last.Status == http.StatusBadRequest && strings.Contains(string(last.Body), "invalid_grant")
	})
	rec.Record("refresh", C.Name, time.Now(), last, "", u.ID)
	if !detected {
		rep.Problem("reuse of a rotated refresh token on %s after the window was not detected: %s", C.Name, last)
		return
	}
	if _, a = Refresh(ctx, c, A.URL, fix.AppID, fix.AppSecret, t1.RefreshToken); a.OK() {
		rep.Problem("after reuse was detected on %s, the family's newest refresh token still works on %s", C.Name, A.Name)
	}
	rep.Note("refresh rotated on A: same pair from B within the window, reuse detected on C after it, family revoked on A")
}

func replicaKeys(ctx context.Context, rep *Report, env Env, key string, c *http.Client, srvs []*Server, fix *Fixture) {
	published := func(s *Server) map[string]bool {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/.well-known/jwks.json", nil)
		a := Do(c, req)
		var set struct {
			Keys []struct {
				Kid string `json:"kid"`
			} `json:"keys"`
		}
		out := map[string]bool{}
		if a.Decode(&set) == nil {
			for _, k := range set.Keys {
				out[k.Kid] = true
			}
		}
		return out
	}
	listKeys := func() (map[string]bool, error) {
		out, err := env.CLI(ctx, key, "", "keys", "list", "--output", "json")
		if err != nil {
			return nil, err
		}
		var ks []map[string]any
		if err := json.Unmarshal(out, &ks); err != nil {
			return nil, err
		}
		m := map[string]bool{}
		for _, k := range ks {
			if v, ok := k["kid"].(string); ok {
				m[v] = true
			}
		}
		return m, nil
	}
	// Pretend the keys are an hour old: a fresh next key may not activate
	// before every JWKS cache could hold it (5 min), and rotation defers.
	if conn, err := pgx.Connect(ctx, env.DatabaseURL); err == nil {
		_, err = conn.Exec(ctx, `UPDATE signing_keys SET created_at = created_at - interval '1 hour',
			activates_at = activates_at - interval '1 hour', retires_at = retires_at - interval '1 hour'`)
		conn.Close(ctx)
		if err != nil {
			rep.Problem("age keys: %v", err)
			return
		}
	}
	oldKid := tokenKid(ctx, c, srvs[0], fix)
	before, err := listKeys()
	if err != nil {
		rep.Problem("authd keys list: %v", err)
		return
	}
	if _, err := env.CLI(ctx, key, "", "keys", "rotate"); err != nil {
		rep.Problem("authd keys rotate: %v", err)
		return
	}
	rep.Faults++
	rotated := time.Now()
	after, err := listKeys()
	if err != nil {
		rep.Problem("authd keys list: %v", err)
		return
	}
	var fresh []string
	for k := range after {
		if !before[k] {
			fresh = append(fresh, k)
		}
	}
	if len(fresh) == 0 {
		rep.Problem("authd keys rotate created no new key")
		return
	}
	var slowest time.Duration
	for _, s := range srvs {
		ok := WaitFor(ctx, 2*KeyPickup, func() bool {
			have := published(s)
			for _, k := range fresh {
				if !have[k] {
					return false
				}
			}
			return true
		})
		took := time.Since(rotated)
		slowest = max(slowest, took)
		if !ok || took > KeyPickup {
			rep.Problem("replica %s served the rotated keys after %s (bound %s, served: %v)", s.Name, took.Round(10*time.Millisecond), KeyPickup, ok)
		}
	}
	rep.Note("keys rotated by the CLI: %d new key(s) in every replica's JWKS within %s (bound %s)", len(fresh), slowest.Round(10*time.Millisecond), KeyPickup)
	// Every replica now signs with the key that was next.
	kids := map[string]bool{}
	for _, s := range srvs {
		kids[tokenKid(ctx, c, s, fix)] = true
	}
	if len(kids) != 1 || kids[oldKid] || kids[""] {
		rep.Problem("after the rotation the replicas sign access tokens with %v (before: %s)", kids, oldKid)
	}
}

// tokenKid is the kid of a fresh access token from s.
func tokenKid(ctx context.Context, c *http.Client, s *Server, fix *Fixture) string {
	tok, a := ClientCredentials(ctx, c, s.URL, fix.SvcID, fix.SvcSecret, "introspect")
	if !a.OK() {
		return ""
	}
	h, _, _ := strings.Cut(tok.AccessToken, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return ""
	}
	var hdr struct {
		Kid string `json:"kid"`
	}
	_ = json.Unmarshal(b, &hdr)
	return hdr.Kid
}

// replicaSpends fires spends at one user from every replica at once; the
// balance covers two thirds of them. Exactly that many succeed, the rest
// get 409 insufficient_credits, and the ledger verifies.
func replicaSpends(ctx context.Context, rep *Report, rec *Recorder, env Env, key string, fix *Fixture, tok string, srvs []*Server, n int) {
	u := fix.Users[1]
	balance := int64(n * 2 / 3)
	c := NewClient(30*time.Second, false)
	if a := Grant(ctx, c, srvs[0].URL, tok, u.ID, "seed-"+RandomID(), balance); !a.OK() {
		rep.Problem("grant: %s", a)
		return
	}
	var wg sync.WaitGroup
	for i := range n {
		s := srvs[i%len(srvs)]
		wg.Go(func() {
			ref := "race-" + RandomID()
			t0 := time.Now()
			a := Spend(ctx, c, s.URL, tok, u.ID, ref, 1)
			rec.Record("spend", s.Name, t0, a, ref, u.ID)
		})
	}
	wg.Wait()
	var ok, refused int
	for _, x := range rec.All() {
		switch {
		case x.Op != "spend":
		case x.Status == http.StatusCreated:
			ok++
		case x.Status == http.StatusConflict:
			refused++
		default:
			rep.Problem("spend on %s: %s %s", x.Server, describe(x), x.Body)
		}
	}
	if int64(ok) != balance || ok+refused != n {
		rep.Problem("%d concurrent spends of 1 against a balance of %d over %d replicas: %d succeeded, %d refused", n, balance, len(srvs), ok, refused)
	}
	var bal struct {
		Balance int64 `json:"balance"`
	}
	if a := JSON(ctx, c, http.MethodGet, srvs[len(srvs)-1].URL+"/api/v1/users/"+u.ID+"/credits", tok, nil, ""); a.Decode(&bal) != nil || bal.Balance != 0 {
		rep.Problem("balance after the race: %s", a)
	}
	rep.Note("%d concurrent spends over %d replicas against %d credits: %d succeeded, %d refused (409), balance 0", n, len(srvs), balance, ok, refused)
	VerifyLedger(ctx, env, key, rep)
	SpendCheck{}.Run(ctx, env.DatabaseURL, rec.All(), rep)
}
