package testkit

import (
	"sync"
	"time"
)

// Clock is a settable time source for tests: components take its Now as
// their Now field, and tests move it with Advance instead of sleeping. The
// zero Clock follows the real time, plus what Advance added; NewClock's
// stands still at its start until advanced. It is safe for concurrent use.
type Clock struct {
	mu    sync.Mutex
	at    time.Time // zero: the real time
	ahead time.Duration
}

// NewClock returns a Clock standing at at.
func NewClock(at time.Time) *Clock { return &Clock{at: at} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at.IsZero() {
		return time.Now().Add(c.ahead)
	}
	return c.at.Add(c.ahead)
}

// Advance moves the clock d forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ahead += d
}
