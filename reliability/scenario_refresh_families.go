package reliability

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// RefreshFamilyOptions sizes the refresh-family scenario.
type RefreshFamilyOptions struct {
	Replicas int // 3
	Parallel int // rounds run at once, one user each (8)
	Rounds   int // rounds per parallel slot (6), alternating reuse and role removal
}

// RefreshFamilies starts several `authd serve` on one database and, in
// many rounds at once, lets a client rotate its refresh token over and over
// on every replica while the family is killed on another replica: by
// presenting an older refresh token (reuse detection) or by removing one
// of the user's roles (`authd user role remove`). Every round the family
// must end dead: no refresh that started after the kill returned succeeds,
// and the database holds no active refresh token and no access token of
// the user.
func RefreshFamilies(ctx context.Context, env Env, o RefreshFamilyOptions) *Report {
	rep := &Report{Name: "refresh families die under concurrent rotation"}
	start := time.Now()
	defer func() { rep.Duration = time.Since(start) }()
	o.Replicas, o.Parallel, o.Rounds = max(o.Replicas, 3), max(o.Parallel, 1), max(o.Rounds, 1)

	st, err := StartStage(ctx, env, StageOptions{Replicas: o.Replicas, Fixture: true, Users: o.Parallel})
	defer st.Close()
	if err != nil {
		rep.Problem("%v", err)
		return rep
	}
	srvs, fix, key := st.Servers, st.Fix, st.Key
	db, err := pgx.Connect(ctx, env.DatabaseURL)
	if err != nil {
		rep.Problem("connect: %v", err)
		return rep
	}
	defer db.Close(context.WithoutCancel(ctx))
	var dbMu sync.Mutex // one pgx.Conn, several slots

	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		counts    = map[string]int{}
		rotations int
	)
	for slot := range o.Parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &familyRound{env: env, key: key, fix: fix, user: fix.Users[slot], srvs: srvs, slot: slot,
				c: NewClient(10*time.Second, false)}
			for round := range o.Rounds {
				kind := []string{"reuse", "role removal"}[round%2]
				problem, n := r.run(ctx, kind, round)
				if problem == "" {
					dbMu.Lock()
					problem = r.checkDead(ctx, db)
					dbMu.Unlock()
				}
				mu.Lock()
				counts[kind]++
				rotations += n
				if problem != "" {
					rep.Problem("slot %d round %d (%s): %s", slot, round, kind, problem)
				}
				mu.Unlock()
				if ctx.Err() != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	rep.Note("%d reuse rounds, %d role-removal rounds over %d replicas, %d at a time; %d rotations raced the kills",
		counts["reuse"], counts["role removal"], o.Replicas, o.Parallel, rotations)
	return rep
}

// familyRound is one parallel slot: one user, rounds one after another.
type familyRound struct {
	env  Env
	key  string
	fix  *Fixture
	user User
	srvs []*Server
	slot int
	c    *http.Client
}

func (r *familyRound) srv(i int) *Server { return r.srvs[(r.slot+i)%len(r.srvs)] }

// run plays one round and returns what went wrong ("" when nothing did) and
// how many rotations the refresher made while racing the kill.
func (r *familyRound) run(ctx context.Context, kind string, round int) (problem string, rotations int) {
	const scope = "offline_access credits:read"
	if kind == "role removal" {
		if _, err := r.env.CLI(ctx, r.key, "", "user", "role", "add", r.user.Email, "admin"); err != nil {
			return fmt.Sprintf("add role: %v", err), 0
		}
	}
	t0, a := PasswordGrant(ctx, r.c, r.srv(0).URL, r.fix.AppID, r.fix.AppSecret, r.user.Email, r.user.Password, scope)
	if !a.OK() || t0.RefreshToken == "" {
		return fmt.Sprintf("login: %s", a), 0
	}
	// Two rotations first: t0's successor is then used, so presenting t0
	// again is reuse even inside the reuse window.
	t1, a := Refresh(ctx, r.c, r.srv(1).URL, r.fix.AppID, r.fix.AppSecret, t0.RefreshToken)
	if !a.OK() {
		return fmt.Sprintf("first refresh: %s", a), 0
	}
	t2, a := Refresh(ctx, r.c, r.srv(2).URL, r.fix.AppID, r.fix.AppSecret, t1.RefreshToken)
	if !a.OK() {
		return fmt.Sprintf("second refresh: %s", a), 0
	}

	// The refresher rotates the family on every replica in turn until a
	// refresh fails; the killer kills it once, on another replica.
	var (
		killedAt time.Time // when the kill returned
		rotated  int
		mu       sync.Mutex
		survivor string
		done     = make(chan struct{})
		go1      = make(chan struct{})
	)
	go func() {
		defer close(done)
		<-go1
		rt := t2.RefreshToken
		for i := 0; ctx.Err() == nil; i++ {
			started := time.Now()
			t, a := Refresh(ctx, r.c, r.srv(i).URL, r.fix.AppID, r.fix.AppSecret, rt)
			if !a.OK() {
				if a.Status != http.StatusBadRequest || t.Error != "invalid_grant" {
					mu.Lock()
					survivor = fmt.Sprintf("refresh failed with %s, want 400 invalid_grant", a)
					mu.Unlock()
				}
				return
			}
			mu.Lock()
			if !killedAt.IsZero() && started.After(killedAt) {
				survivor = fmt.Sprintf("a refresh started %v after the family was killed succeeded on %s", started.Sub(killedAt), r.srv(i).Name)
				mu.Unlock()
				return
			}
			mu.Unlock()
			rt = t.RefreshToken
			rotated++
		}
	}()
	close(go1)
	var killErr error
	switch kind {
	case "reuse":
		t, a := Refresh(ctx, r.c, r.srv(round+1).URL, r.fix.AppID, r.fix.AppSecret, t0.RefreshToken)
		if a.Status != http.StatusBadRequest || t.Error != "invalid_grant" {
			killErr = fmt.Errorf("reused token: %s, want 400 invalid_grant", a)
		}
	case "role removal":
		_, killErr = r.env.CLI(ctx, r.key, "", "user", "role", "remove", r.user.Email, "admin")
	}
	mu.Lock()
	killedAt = time.Now()
	mu.Unlock()
	<-done
	switch {
	case killErr != nil:
		return killErr.Error(), rotated
	case survivor != "":
		return survivor, rotated
	case ctx.Err() != nil:
		return ctx.Err().Error(), rotated
	}
	return "", rotated
}

// checkDead returns a problem unless the user has no active refresh token
// and no access token left.
func (r *familyRound) checkDead(ctx context.Context, db *pgx.Conn) string {
	var rts, ats int
	err := db.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM oauth2_refresh WHERE subject = $1 AND active),
		(SELECT count(*) FROM oauth2_access WHERE subject = $1)`, r.user.ID).Scan(&rts, &ats)
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Sprintf("count tokens: %v", err)
	}
	if rts != 0 || ats != 0 {
		return fmt.Sprintf("the family survived: %d active refresh tokens and %d access tokens left", rts, ats)
	}
	return ""
}
