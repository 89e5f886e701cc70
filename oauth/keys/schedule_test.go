package keys

import (
	"testing"
	"time"
)

// The planners are pure; these cases cover the paths the database tests
// reach only by waiting out a whole rotation period.

func testCfg() Config {
	c, err := Config{}.withDefaults()
	if err != nil {
		panic(err)
	}
	return c
}

var t0 = time.Date(2031, 3, 1, 12, 0, 0, 0, time.UTC)

func TestChain_Ensure(t *testing.T) {
	cfg := testCfg()
	t.Run("OKFirstStart", func(t *testing.T) {
		c := &chain{alg: ES256}
		if !c.ensure(t0, cfg) {
			t.Fatal("no change on an empty chain")
		}
		a, n := c.active(t0), c.pending(t0)
		if a == nil || n == nil || a.generation != 1 || n.generation != 2 {
			t.Fatalf("want gen 1 active and gen 2 next, got %+v", c.slots)
		}
		if !n.activatesAt.Equal(a.retiresAt) || !a.retiresAt.Equal(t0.Add(cfg.RotationPeriod)) {
			t.Fatalf("chain not contiguous: %+v %+v", a, n)
		}
		if c.ensure(t0, cfg) {
			t.Fatal("second ensure changed a complete chain")
		}
	})
	t.Run("OKNextAfterActivation", func(t *testing.T) {
		c := &chain{alg: ES256}
		c.ensure(t0, cfg)
		now := t0.Add(cfg.RotationPeriod) // gen 2 has just activated
		if !c.ensure(now, cfg) {
			t.Fatal("no next key after the next key activated")
		}
		n := c.pending(now)
		if n == nil || n.generation != 3 || !n.createdAt.Equal(now) || !n.activatesAt.Equal(now.Add(cfg.RotationPeriod)) {
			t.Fatalf("next = %+v", n)
		}
	})
	t.Run("OKLateChainExtendsActiveKey", func(t *testing.T) {
		// Nobody ran for a long time: gen 2 signs but retires within
		// Prepublish, and there is no gen 3 yet.
		c := &chain{alg: ES256}
		c.ensure(t0, cfg)
		now := t0.Add(2*cfg.RotationPeriod - time.Hour)
		c.ensure(now, cfg)
		a, n := c.active(now), c.pending(now)
		if a.generation != 2 || !a.changed || !a.retiresAt.Equal(now.Add(cfg.Prepublish)) {
			t.Fatalf("active not extended to now+Prepublish: %+v", a)
		}
		if !n.activatesAt.Equal(now.Add(cfg.Prepublish)) {
			t.Fatalf("next activates at %s, want now+Prepublish", n.activatesAt)
		}
	})
	t.Run("OKExpiredChainSignsAtOnce", func(t *testing.T) {
		c := &chain{alg: RS256}
		c.ensure(t0, cfg)
		for _, s := range c.slots {
			s.kid = "stored" // rows already in the database
		}
		now := t0.Add(10 * cfg.RotationPeriod)
		c.ensure(now, cfg)
		a := c.active(now)
		if a == nil || a.generation != 3 || !a.activatesAt.Equal(now) {
			t.Fatalf("want an immediately active gen 3, got %+v", a)
		}
		if n := c.pending(now); n == nil || n.generation != 4 {
			t.Fatalf("want a gen 4 next key, got %+v", n)
		}
		if got := len(c.expired(now, cfg.RetainAfter)); got != 2 {
			t.Fatalf("want gens 1 and 2 expired, got %d", got)
		}
	})
}

func TestChain_Rotate(t *testing.T) {
	cfg := testCfg()
	c := &chain{alg: ES256}
	c.ensure(t0, cfg)
	old, next := c.active(t0), c.pending(t0)

	now := t0.Add(cfg.settle() + time.Second)
	changed, got := c.rotate(now, cfg)
	if !changed || got != next || c.active(now) != next {
		t.Fatalf("rotate did not activate the next key now: %+v", c.slots)
	}
	if !old.retiresAt.Equal(now) || !next.retiresAt.Equal(now.Add(cfg.RotationPeriod)) {
		t.Fatalf("windows: old retires %s, next retires %s", old.retiresAt, next.retiresAt)
	}
	n3 := c.pending(now)
	if n3 == nil || n3.generation != 3 || !n3.activatesAt.Equal(next.retiresAt) {
		t.Fatalf("new next key = %+v", n3)
	}
	// Rotating again at once defers: gen 3 is brand new.
	changed, got = c.rotate(now, cfg)
	if !changed || got != n3 || !n3.activatesAt.Equal(now.Add(cfg.settle())) || !next.retiresAt.Equal(n3.activatesAt) {
		t.Fatalf("second rotate: %v %+v", changed, c.slots)
	}
	if changed, _ = c.rotate(now, cfg); changed {
		t.Fatal("third rotate while deferred changed the chain")
	}
}
