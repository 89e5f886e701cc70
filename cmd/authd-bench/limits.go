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
	Key  string  `json:"key"`
	Name string  `json:"name"`
	Rate float64 `json:"per_second"`
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

// spin runs fn on every core until d has passed and returns calls per second.
func spin(ctx context.Context, d time.Duration, fn func()) float64 {
	n := runtime.GOMAXPROCS(0)
	var count atomic.Int64
	var wg sync.WaitGroup
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
	return float64(count.Load()) / time.Since(start).Seconds()
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
		{Key: limitES256Sign, Name: "ES256 sign", Rate: spin(ctx, d, func() {
			s, _ := ecdsa.SignASN1(rand.Reader, ec, digest[:])
			sink.Store(len(s) > 0)
		})},
		{Key: limitES256Verify, Name: "ES256 verify", Rate: spin(ctx, d, func() {
			sink.Store(ecdsa.VerifyASN1(&ec.PublicKey, digest[:], sig))
		})},
		{Key: limitRS256Sign, Name: "RS256 sign", Rate: spin(ctx, d, func() {
			s, _ := rsa.SignPKCS1v15(nil, rk, crypto.SHA256, digest[:])
			sink.Store(len(s) > 0)
		})},
	}
	// bcrypt is ~50 ms per call: batches of 16 per core would overrun d
	// badly, so it gets its own loop.
	limits = append(limits, Limit{Key: limitBcrypt, Name: "bcrypt cost " + itoa(bcryptCost), Rate: bcryptRate(ctx, d, hash)})
	limits = append(limits, Limit{Key: limitSHA256, Name: "SHA-256 (32 B)", Rate: spin(ctx, d, func() {
		s := sha256.Sum256(secret)
		sink.Store(s[0] == 0)
	})})
	return limits, ctx.Err()
}

func bcryptRate(ctx context.Context, d time.Duration, hash []byte) float64 {
	var count atomic.Int64
	var wg sync.WaitGroup
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
	return float64(count.Load()) / time.Since(start).Seconds()
}
