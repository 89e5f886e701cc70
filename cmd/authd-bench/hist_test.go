package main

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketOf_RangesAreContiguous(t *testing.T) {
	prevHi := uint64(0)
	for i := 0; i < histBuckets; i++ {
		lo, hi := bucketRange(i)
		if i > 0 && lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d = [%d, %d] but bucketOf gives %d and %d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		prevHi = hi
		if hi == 1<<63-1 || i == histBuckets-1 {
			break
		}
	}
}

func TestHistogram_QuantileWithinPrecision(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	var exact []time.Duration
	for range 100000 {
		// Log-normal-ish latencies from 50µs to a few hundred ms.
		d := time.Duration(50_000 * (1 + r.ExpFloat64()*r.ExpFloat64()*100))
		h.Record(d)
		exact = append(exact, d)
	}
	slices.Sort(exact)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := exact[int(q*float64(len(exact)))-1]
		got := h.Quantile(q)
		if diff := float64(got-want) / float64(want); diff > 0.02 || diff < -0.02 {
			t.Errorf("q%.3f = %s, exact %s (off by %.1f%%)", q, got, want, diff*100)
		}
	}
	if h.Count() != 100000 || h.Max() != exact[len(exact)-1] {
		t.Errorf("count %d max %s", h.Count(), h.Max())
	}
}

func TestHistogram_SmallAndEdgeValues(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Mean() != 0 {
		t.Fatal("empty histogram must report zeros")
	}
	for _, d := range []time.Duration{1, 2, 3, 4} {
		h.Record(d)
	}
	if got := h.Quantile(0.5); got != 2 {
		t.Errorf("p50 of 1..4ns = %d, want 2 (exact below 64ns)", got)
	}
	if got := h.Quantile(1); got != 4 {
		t.Errorf("p100 = %d, want 4", got)
	}
	h.Record(-5) // clock weirdness counts as zero, not a panic
	if h.Quantile(0.01) != 0 {
		t.Errorf("negative durations must record as 0")
	}
}

func TestHistogram_MergeEqualsRecordingTogether(t *testing.T) {
	var a, b, all Histogram
	for i := range 1000 {
		d := time.Duration(i*i) * time.Microsecond
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	for _, q := range []float64{0.1, 0.5, 0.99} {
		if a.Quantile(q) != all.Quantile(q) {
			t.Errorf("q%.2f merged %s, together %s", q, a.Quantile(q), all.Quantile(q))
		}
	}
	if a.Count() != all.Count() || a.Mean() != all.Mean() || a.Max() != all.Max() {
		t.Errorf("merged count/mean/max differ")
	}
}
