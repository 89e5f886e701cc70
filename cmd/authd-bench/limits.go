package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Limit is one machine limit: how many of something this machine does per
// second on all cores, with nothing else of ours running.
type Limit struct {
	Key  string `json:"key"`
	Name string `json:"name"`
	// Rate is per second of all cores' CPU: the count divided by the CPU
	// time the measurement used, times the cores. Other load on the machine
	// slows the wall clock but not this, so the limit stays the machine's.
	Rate float64 `json:"per_second"`
	// WallRate is the count divided by wall time, as observed.
	WallRate float64 `json:"per_wall_second"`
}

// measured turns a count over a wall time and a CPU time into a Limit.
func measured(key, name string, count int64, wall, cpu time.Duration) Limit {
	l := Limit{Key: key, Name: name}
	if wall > 0 {
		l.WallRate = float64(count) / wall.Seconds()
	}
	if cpu > 0 {
		l.Rate = float64(count) / cpu.Seconds() * float64(runtime.GOMAXPROCS(0))
	} else {
		l.Rate = l.WallRate
	}
	return l
}

// Limit keys the scenarios refer to.
const (
	limitES256Sign   = "es256_sign"
	limitES256Verify = "es256_verify"
	limitRS256Sign   = "rs256_sign"
	limitBcrypt      = "bcrypt"
	limitSHA256      = "sha256"
	limitBareHTTP    = "bare_http"
)

// spin runs fn on every core until d has passed.
func spin(ctx context.Context, key, name string, d time.Duration, fn func()) Limit {
	n := runtime.GOMAXPROCS(0)
	var count atomic.Int64
	var wg sync.WaitGroup
	cpu0, _ := selfCPU{}.CPU()
	start := time.Now()
	deadline := start.Add(d)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := int64(0)
			for ctx.Err() == nil && time.Now().Before(deadline) {
				// Batches keep time.Now out of the measurement of fast fns.
				for range 16 {
					fn()
				}
				local += 16
			}
			count.Add(local)
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	cpu1, _ := selfCPU{}.CPU()
	return measured(key, name, count.Load(), wall, cpu1-cpu0)
}

// measureCryptoLimits measures the CPU-bound limits: signatures, bcrypt at
// cost, SHA-256 of a 32-byte secret (what a client-secret check hashes).
func measureCryptoLimits(ctx context.Context, d time.Duration, bcryptCost int) ([]Limit, error) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256([]byte("header.payload of a typical access token"))
	sig, err := ecdsa.SignASN1(rand.Reader, ec, digest[:])
	if err != nil {
		return nil, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte("correct horse battery staple"), bcryptCost)
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	var sink atomic.Bool // keeps results live without a data race
	limits := []Limit{
		spin(ctx, limitES256Sign, "ES256 sign", d, func() {
			s, _ := ecdsa.SignASN1(rand.Reader, ec, digest[:])
			sink.Store(len(s) > 0)
		}),
		spin(ctx, limitES256Verify, "ES256 verify", d, func() {
			sink.Store(ecdsa.VerifyASN1(&ec.PublicKey, digest[:], sig))
		}),
		spin(ctx, limitRS256Sign, "RS256 sign", d, func() {
			s, _ := rsa.SignPKCS1v15(nil, rk, crypto.SHA256, digest[:])
			sink.Store(len(s) > 0)
		}),
	}
	// bcrypt is ~50 ms per call: batches of 16 per core would overrun d
	// badly, so it gets its own loop.
	limits = append(limits, bcryptRate(ctx, "bcrypt cost "+itoa(bcryptCost), d, hash))
	limits = append(limits, spin(ctx, limitSHA256, "SHA-256 (32 B)", d, func() {
		s := sha256.Sum256(secret)
		sink.Store(s[0] == 0)
	}))
	return limits, ctx.Err()
}

func bcryptRate(ctx context.Context, name string, d time.Duration, hash []byte) Limit {
	var count atomic.Int64
	var wg sync.WaitGroup
	cpu0, _ := selfCPU{}.CPU()
	start := time.Now()
	deadline := start.Add(d)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				if bcrypt.CompareHashAndPassword(hash, []byte("correct horse battery staple")) == nil {
					count.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	cpu1, _ := selfCPU{}.CPU()
	return measured(limitBcrypt, name, count.Load(), wall, cpu1-cpu0)
}
