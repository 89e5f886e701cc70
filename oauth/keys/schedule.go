package keys

import (
	"sort"
	"time"
)

// slot is one key's place in an algorithm's chain, as the scheduler sees it:
// times only, no key material. The planners below edit slots in memory and
// mark what changed; the store then writes exactly those changes.
type slot struct {
	kid         string // empty for a slot the store must create a key for
	alg         string
	generation  int
	createdAt   time.Time
	activatesAt time.Time
	retiresAt   time.Time
	changed     bool // an existing row whose schedule moved
}

func (s *slot) isNew() bool { return s.kid == "" }

// signsAt reports whether s is inside its signing window at t.
func (s *slot) signsAt(t time.Time) bool {
	return !s.activatesAt.After(t) && t.Before(s.retiresAt)
}

// chain holds one algorithm's slots.
type chain struct {
	alg   string
	slots []*slot
}

// active returns the slot that signs at t: the most recently activated one
// whose window contains t (newest generation on a tie), or nil.
func (c *chain) active(t time.Time) *slot {
	var best *slot
	for _, s := range c.slots {
		if !s.signsAt(t) {
			continue
		}
		if best == nil || s.activatesAt.After(best.activatesAt) ||
			(s.activatesAt.Equal(best.activatesAt) && s.generation > best.generation) {
			best = s
		}
	}
	return best
}

// pending returns the slot that will sign next after t (smallest activatesAt
// in the future), or nil.
func (c *chain) pending(t time.Time) *slot {
	var best *slot
	for _, s := range c.slots {
		if s.activatesAt.After(t) && (best == nil || s.activatesAt.Before(best.activatesAt)) {
			best = s
		}
	}
	return best
}

// latest returns the slot that activates last, or nil.
func (c *chain) latest() *slot {
	var best *slot
	for _, s := range c.slots {
		if best == nil || s.activatesAt.After(best.activatesAt) ||
			(s.activatesAt.Equal(best.activatesAt) && s.generation > best.generation) {
			best = s
		}
	}
	return best
}

func (c *chain) add(createdAt, activatesAt time.Time, period time.Duration) *slot {
	gen := 0
	for _, s := range c.slots {
		gen = max(gen, s.generation)
	}
	s := &slot{alg: c.alg, generation: gen + 1, createdAt: createdAt, activatesAt: activatesAt, retiresAt: activatesAt.Add(period)}
	c.slots = append(c.slots, s)
	return s
}

// ensure makes the chain satisfy the schedule's invariants at now:
//   - some key signs now; if none does (first start, or every key expired
//     while no replica ran) a key is created that signs at once: there is no
//     published key to wait for, and refusing to sign would be an outage;
//   - a next key exists that activates when the active one retires, and has
//     been published for at least Prepublish by then. If the chain is late
//     (the active key retires sooner than that) the active key's window is
//     extended rather than signing with an unpublished key.
//
// It reports whether it changed anything.
func (c *chain) ensure(now time.Time, cfg Config) bool {
	changed := false
	if c.active(now) == nil {
		c.add(now, now, cfg.RotationPeriod)
		changed = true
	}
	last := c.latest()
	if last.activatesAt.After(now) {
		return changed // a next key is already scheduled
	}
	start := last.retiresAt
	if earliest := now.Add(cfg.Prepublish); start.Before(earliest) {
		last.retiresAt = earliest
		last.changed = true
		start = earliest
	}
	c.add(now, start, cfg.RotationPeriod)
	return true
}

// rotate moves the pending key's activation forward to the earliest safe
// moment and retires the active key then; ensure then schedules a new next
// key. The earliest safe moment is now, if the pending key was created at
// least cfg.settle() ago (every replica has loaded it and every JWKS cache
// that could lack it has expired); otherwise it is createdAt + settle(): a
// rotation right after a key was created is deferred by at most a poll
// interval plus the JWKS max-age instead of signing with a key that clients
// may not have. A second rotate while one is deferred changes nothing.
//
// It reports whether it changed anything and the slot that takes over.
func (c *chain) rotate(now time.Time, cfg Config) (bool, *slot) {
	changed := c.ensure(now, cfg)
	next := c.pending(now)
	if next == nil {
		return changed, nil // unreachable after ensure; kept for safety
	}
	at := next.createdAt.Add(cfg.settle())
	if at.Before(now) {
		at = now
	}
	if !at.Before(next.activatesAt) {
		return changed, next
	}
	for _, s := range c.slots {
		if s != next && s.activatesAt.Before(at) && s.retiresAt.After(at) {
			s.retiresAt = at
			s.changed = true
		}
	}
	next.activatesAt = at
	next.retiresAt = at.Add(cfg.RotationPeriod)
	next.changed = true
	c.ensure(now, cfg)
	return true, next
}

// expired returns the slots no longer published at now: retired for longer
// than RetainAfter, so no unexpired token can carry their kid.
func (c *chain) expired(now time.Time, retain time.Duration) []*slot {
	var out []*slot
	for _, s := range c.slots {
		if !s.isNew() && !now.Before(s.retiresAt.Add(retain)) {
			out = append(out, s)
		}
	}
	return out
}

// chains groups slots by algorithm, in algorithms() order, with an empty
// chain for an algorithm that has no keys yet.
func chains(slots []*slot) []*chain {
	out := make([]*chain, 0, 2)
	for _, alg := range algorithms() {
		c := &chain{alg: alg}
		for _, s := range slots {
			if s.alg == alg {
				c.slots = append(c.slots, s)
			}
		}
		sort.Slice(c.slots, func(i, j int) bool { return c.slots[i].generation < c.slots[j].generation })
		out = append(out, c)
	}
	return out
}
