// Package ratelimit holds per-key token buckets (golang.org/x/time/rate) in
// bounded memory, and HTTP middleware that limits by client IP and answers
// 429 with Retry-After.
package ratelimit

import (
	"container/list"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/authd/authd/internal/clientip"
	"github.com/authd/authd/internal/problem"
)

// Config shapes a Limiter.
type Config struct {
	// Every is the refill interval of one token (e.g. 6s for 10 per minute).
	Every time.Duration
	// Burst is the bucket size: requests allowed at once.
	Burst int
	// MaxKeys bounds memory: beyond it the least recently seen key is
	// forgotten (10,000). A forgotten key starts again with a full bucket,
	// which errs towards allowing, never towards blocking a stranger.
	MaxKeys int
	Now     func() time.Time
}

// Limiter is a set of token buckets, one per key. Safe for concurrent use.
type Limiter struct {
	cfg   Config
	mu    sync.Mutex
	lru   *list.List // front = most recent; values are *entry
	byKey map[string]*list.Element
}

type entry struct {
	key string
	lim *rate.Limiter
}

// New returns a Limiter. Every and Burst must be positive.
func New(cfg Config) *Limiter {
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = 10000
	}
	if cfg.Burst <= 0 {
		cfg.Burst = 1
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Limiter{cfg: cfg, lru: list.New(), byKey: map[string]*list.Element{}}
}

// Allow takes a token for key. When none is left it returns false and how
// long until one will be.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	el, ok := l.byKey[key]
	if ok {
		l.lru.MoveToFront(el)
	} else {
		el = l.lru.PushFront(&entry{key: key, lim: rate.NewLimiter(rate.Every(l.cfg.Every), l.cfg.Burst)})
		l.byKey[key] = el
		for l.lru.Len() > l.cfg.MaxKeys {
			old := l.lru.Back()
			l.lru.Remove(old)
			delete(l.byKey, old.Value.(*entry).key)
		}
	}
	lim := el.Value.(*entry).lim
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Blocked reports, without taking a token, whether key has none left, and
// how long until it will have one. For limits counted on failures only:
// check Blocked before the attempt, call Allow after a failed one.
func (l *Limiter) Blocked(key string) (bool, time.Duration) {
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	el, ok := l.byKey[key]
	if !ok {
		return false, 0
	}
	tokens := el.Value.(*entry).lim.TokensAt(now)
	if tokens >= 1 {
		return false, 0
	}
	return true, time.Duration((1 - tokens) * float64(l.cfg.Every))
}

// Len returns the number of keys held.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}

// ClientIP is the key every per-address limit uses: the client address
// (clientip.Of: the peer, or behind trusted proxies the address they
// report), IPv6 by its /64.
func ClientIP(r *http.Request) string {
	return clientip.Key(clientip.Of(r))
}

// RetryAfter formats d as a Retry-After value: whole seconds, at least 1.
func RetryAfter(d time.Duration) string {
	return strconv.Itoa(seconds(d))
}

// seconds is d in whole seconds, rounded up, at least 1.
func seconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// WaitText says d to a person, rounded up as Retry-After is: "1 second",
// "45 seconds", "15 minutes" (whole minutes from two minutes on).
func WaitText(d time.Duration) string {
	n := seconds(d)
	switch {
	case n == 1:
		return "1 second"
	case n < 120:
		return strconv.Itoa(n) + " seconds"
	default:
		return strconv.Itoa((n+59)/60) + " minutes"
	}
}

// Middleware limits requests other than GET, HEAD and OPTIONS per client IP
// (reading a form is free, submitting it is not) and answers 429 with
// Retry-After and a problem document.
func (l *Limiter) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
			return
		}
		if ok, wait := l.Allow(ClientIP(r)); !ok {
			TooMany(w, r, wait)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ErrLimited is a request refused for its rate (by the Limiter, or by a
// throttle of another package that answers through Problem).
var ErrLimited = errors.New("ratelimit: too many requests")

// wireErrors is the package's wire error; the detail names the wait.
var wireErrors = problem.Table{
	{Err: ErrLimited, Status: http.StatusTooManyRequests, Code: "rate_limited", Title: "Too Many Requests"},
}

// Problem is the 429 for a request refused for wait: detail says what was
// limited, cause (may be nil) is kept for logs and errors.Is.
func Problem(detail string, wait time.Duration, cause error) *problem.Error {
	err := ErrLimited
	if cause != nil {
		err = fmt.Errorf("%w: %w", ErrLimited, cause)
	}
	pe, _ := wireErrors.Find(err)
	pe.Detail = detail + "; retry after " + RetryAfter(wait) + " seconds"
	return pe
}

// TooMany writes a 429 problem with Retry-After.
func TooMany(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	w.Header().Set("Retry-After", RetryAfter(wait))
	problem.Write(w, r, Problem("too many requests from this address", wait, nil))
}
