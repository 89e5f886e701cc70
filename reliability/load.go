package reliability

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// maxLoopIterations bounds every request loop in count as well as in time.
const maxLoopIterations = 50000

// Loop runs step in workers goroutines until ctx ends (or each has run
// maxLoopIterations times) and waits for them. step gets its worker number.
func Loop(ctx context.Context, workers int, step func(ctx context.Context, worker int)) {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < maxLoopIterations && ctx.Err() == nil; i++ {
				step(ctx, w)
			}
		}()
	}
	wg.Wait()
}

// Mix is the standard load: client_credentials tokens, password-grant logins
// and spends, recorded in Rec. Base picks the server for each request.
type Mix struct {
	Fix  *Fixture
	Rec  *Recorder
	Base func(worker int, n int64) (name, url string)
	// Spender is the bearer token spends use (a service token).
	Spender  func() string
	Amount   int64
	Workers  int // goroutines per kind
	NoLogins bool
	seq      atomic.Int64
}

// Run drives the mix until ctx ends. The per-request timeout must be longer
// than anything authd may legitimately take, so a hang shows as a timeout.
func (m *Mix) Run(ctx context.Context, reqTimeout time.Duration) {
	if m.Amount == 0 {
		m.Amount = 1
	}
	// Requests carry their own timeout; the load stops between requests, so
	// no request is cut short by the end of the run.
	reqCtx := context.WithoutCancel(ctx)
	keep := NewClient(reqTimeout, false)
	fresh := NewClient(reqTimeout, true)
	var wg sync.WaitGroup
	run := func(fn func(ctx context.Context, w int)) {
		wg.Add(1)
		go func() { defer wg.Done(); Loop(ctx, m.Workers, fn) }()
	}
	run(func(_ context.Context, w int) {
		name, base := m.Base(w, m.seq.Add(1))
		start := time.Now()
		_, a := ClientCredentials(reqCtx, keep, base, m.Fix.SvcID, m.Fix.SvcSecret, "introspect")
		backoff(m.Rec.Record("token", name, start, a, "", ""))
	})
	if !m.NoLogins {
		run(func(_ context.Context, w int) {
			n := m.seq.Add(1)
			u := m.Fix.Users[int(n)%len(m.Fix.Users)]
			name, base := m.Base(w, n)
			start := time.Now()
			_, a := PasswordGrant(reqCtx, fresh, base, m.Fix.AppID, m.Fix.AppSecret, u.Email, u.Password, "credits:read")
			backoff(m.Rec.Record("login", name, start, a, "", u.ID))
		})
	}
	run(func(_ context.Context, w int) {
		n := m.seq.Add(1)
		u := m.Fix.Users[int(n)%len(m.Fix.Users)]
		name, base := m.Base(w, n)
		ref := "spend-" + RandomID()
		start := time.Now()
		a := Spend(reqCtx, keep, base, m.Spender(), u.ID, ref, m.Amount)
		backoff(m.Rec.Record("spend", name, start, a, ref, u.ID))
	})
	wg.Wait()
}

// backoff pauses a client after a failure, as a polite client does on 503
// (authd sends Retry-After: 1; the load retries sooner to probe recovery).
func backoff(o Outcome) {
	if o.Status/100 != 2 {
		time.Sleep(50 * time.Millisecond)
	}
}

// SingleServer is a Mix.Base for one server.
func SingleServer(s *Server) func(int, int64) (string, string) {
	return func(int, int64) (string, string) { return s.Name, s.URL }
}

// Sampler samples a metric of one server periodically and keeps the peak.
type Sampler struct {
	mu   sync.Mutex
	peak float64
	n    int
}

// Run samples until ctx ends.
func (s *Sampler) Run(ctx context.Context, base, metric string, every time.Duration) {
	c := &http.Client{Timeout: 2 * time.Second}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if v, err := Metric(ctx, c, base, metric); err == nil {
			s.mu.Lock()
			s.peak = max(s.peak, v)
			s.n++
			s.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Peak is the highest sample so far and how many samples were taken.
func (s *Sampler) Peak() (float64, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak, s.n
}
