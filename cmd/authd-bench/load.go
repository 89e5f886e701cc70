package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Op is one operation of a scenario, run by one worker. It returns an error
// when the answer was not the expected one (the error text should say what
// came back).
type Op func(ctx context.Context) error

// NewWorker builds worker i's Op; per-worker state (a refresh-token chain, a
// cookie jar) lives in its closure, so Ops never share mutable state.
type NewWorker func(ctx context.Context, i int) (Op, error)

// LoadConfig bounds one run.
type LoadConfig struct {
	Concurrency int
	Duration    time.Duration // measured part
	Warmup      time.Duration // run but not measured: connections, caches
	// Meters are sampled at the start and end of the measured part.
	Meters map[string]CPUSource
}

// LoadResult is what one run measured.
type LoadResult struct {
	Ops uint64
	// Errors counts failed operations, the warm-up's included: a failure
	// there is as real (the mixed scenario's expired tokens once failed
	// mostly in its warm-up, so most of them went unreported); FirstErr is
	// the first of them.
	Errors   uint64
	FirstErr string
	Elapsed  time.Duration
	Hist     *Histogram
	// CPU is each meter's CPU time over the measured part.
	CPU map[string]time.Duration
	// MeterErr is the first failure to read a meter (its CPU is then missing).
	MeterErr string
}

// Rate is operations per second.
func (r *LoadResult) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Ops) / r.Elapsed.Seconds()
}

// CPUPerOp is meter's CPU time per successful-or-failed operation.
func (r *LoadResult) CPUPerOp(meter string) (time.Duration, bool) {
	d, ok := r.CPU[meter]
	if !ok || r.Ops == 0 {
		return 0, false
	}
	return d / time.Duration(r.Ops), true
}

type meterSample map[string]time.Duration

func sample(meters map[string]CPUSource) (meterSample, error) {
	s := meterSample{}
	var first error
	for name, m := range meters {
		d, err := m.CPU()
		if err != nil {
			if first == nil {
				first = fmt.Errorf("%s: %w", name, err)
			}
			continue
		}
		s[name] = d
	}
	return s, first
}

// RunLoad runs cfg.Concurrency workers in a closed loop (each sends its next
// request when the previous answer is in) for Warmup+Duration. Only
// operations that start inside the measured part are timed and counted as
// operations; a failure counts as an error whenever it happens.
func RunLoad(ctx context.Context, cfg LoadConfig, newWorker NewWorker) (*LoadResult, error) {
	if cfg.Concurrency <= 0 {
		return nil, errors.New("bench: concurrency must be positive")
	}
	ops := make([]Op, cfg.Concurrency)
	for i := range ops {
		op, err := newWorker(ctx, i)
		if err != nil {
			return nil, fmt.Errorf("worker %d: %w", i, err)
		}
		ops[i] = op
	}
	start := time.Now()
	measureFrom := start.Add(cfg.Warmup)
	end := measureFrom.Add(cfg.Duration)
	runCtx, cancel := context.WithDeadline(ctx, end.Add(30*time.Second)) // a hung request must not hang the run
	defer cancel()

	var (
		errCount atomic.Uint64
		firstErr atomic.Pointer[string]
		wg       sync.WaitGroup
		hists    = make([]*Histogram, cfg.Concurrency)
		begin    meterSample
		beginErr error
		measured = make(chan struct{})
	)
	// The meters are read when the measured part starts, by a timer rather
	// than by a worker, so no worker's op is delayed by it.
	timer := time.AfterFunc(time.Until(measureFrom), func() {
		begin, beginErr = sample(cfg.Meters)
		close(measured)
	})
	defer timer.Stop()
	for i, op := range ops {
		hists[i] = &Histogram{}
		wg.Add(1)
		go func(op Op, h *Histogram) {
			defer wg.Done()
			for runCtx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				err := op(runCtx)
				d := time.Since(t0)
				if err != nil {
					errCount.Add(1)
					msg := err.Error()
					firstErr.CompareAndSwap(nil, &msg)
				}
				if t0.Before(measureFrom) {
					continue
				}
				h.Record(d)
			}
		}(op, hists[i])
	}
	wg.Wait()
	stop := time.Now()
	select {
	case <-measured:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	finish, finishErr := sample(cfg.Meters)

	res := &LoadResult{Hist: &Histogram{}, Errors: errCount.Load(), CPU: map[string]time.Duration{}}
	for _, h := range hists {
		res.Hist.Merge(h)
	}
	res.Ops = res.Hist.Count()
	res.Elapsed = stop.Sub(measureFrom)
	if p := firstErr.Load(); p != nil {
		res.FirstErr = *p
	}
	for name, b := range begin {
		if f, ok := finish[name]; ok {
			res.CPU[name] = f - b
		}
	}
	if err := errors.Join(beginErr, finishErr); err != nil {
		res.MeterErr = err.Error()
	}
	return res, nil
}
