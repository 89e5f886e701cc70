package reliability

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// StageOptions says what a scenario starts before its load.
type StageOptions struct {
	Replicas int      // authd servers on the one database, sharing issuer and key (1)
	Peers    bool     // start the mail and webhook peers and point the servers at them
	Extra    []string // more server configuration
	Fixture  bool     // create the clients and Users users (NewFixture)
	Users    int
	Credits  int64 // granted to each fixture user
	Spender  bool  // fetch a service token (credits:charge) for the load's spends
}

// Stage is what a scenario runs against: its servers (named A, B, …; A's
// URL is every replica's issuer) and what the load needs.
type Stage struct {
	Key     string // AUTHD_SECRETS_KEY of every server
	Peers   *Peers // nil without StageOptions.Peers
	Servers []*Server
	Fix     *Fixture // nil without StageOptions.Fixture
	Spender string   // the service token, with StageOptions.Spender
}

// StartStage starts what o asks for, in order: the peers, the servers, the
// fixture and the spender's token. The stage is returned even with an
// error, holding what did start: Close it in either case.
func StartStage(ctx context.Context, env Env, o StageOptions) (*Stage, error) {
	st := &Stage{Key: NewSecretsKey()}
	extra := o.Extra
	if o.Peers {
		p, err := NewPeers()
		if err != nil {
			return st, err
		}
		st.Peers = p
		extra = append(p.Env(), extra...)
	}
	issuer := ""
	for i := range max(o.Replicas, 1) {
		s, err := StartServer(ctx, env, ServerConfig{Name: string(rune('A' + i)), Key: st.Key, Issuer: issuer, Extra: extra})
		if err != nil {
			return st, err
		}
		if issuer == "" {
			issuer = s.URL
		}
		st.Servers = append(st.Servers, s)
	}
	if !o.Fixture {
		return st, nil
	}
	fix, err := NewFixture(ctx, env, st.Key, st.Servers[0].URL, o.Users, o.Credits)
	if err != nil {
		return st, fmt.Errorf("fixture: %w", err)
	}
	st.Fix = fix
	if o.Spender {
		tok, err := fix.ServiceToken(ctx, &http.Client{Timeout: 5 * time.Second}, st.Servers[0].URL)
		if err != nil {
			return st, err
		}
		st.Spender = tok
	}
	return st, nil
}

// CheckSpends verifies the ledger, checks every spend in outs against it
// (one that ambiguous says may have gone either way is resent with its
// reference to server A through c, with the spender's token) and verifies
// the ledger again.
func (st *Stage) CheckSpends(ctx context.Context, env Env, c *http.Client, outs []Outcome, ambiguous func(Outcome) bool, rep *Report) {
	VerifyLedger(ctx, env, st.Key, rep)
	SpendCheck{
		Ambiguous: ambiguous,
		Retry: func(ctx context.Context, x Outcome) Answer {
			return Spend(ctx, c, st.Servers[0].URL, st.Spender, x.User, x.Ref, 1)
		},
	}.Run(ctx, env.DatabaseURL, outs, rep)
	VerifyLedger(ctx, env, st.Key, rep)
}

// Close kills the servers, then stops the peers.
func (st *Stage) Close() {
	for _, s := range st.Servers {
		s.Kill()
	}
	if st.Peers != nil {
		st.Peers.Close()
	}
}
