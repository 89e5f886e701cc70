// Package testkit holds what tests of several packages share: a settable
// clock, a poll-until helper, and the headless Chromium they drive hosted
// pages with.
package testkit

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Chromium starts Debian's headless Chromium with a fresh profile and the
// flags this kind of machine needs (no sandbox as root, no background
// networking to a closed network), and returns a chromedp context that
// expires after timeout and is closed when the test ends. It fails the
// test when Chromium cannot start: a browser test never skips.
func Chromium(tb testing.TB, timeout time.Duration) context.Context {
	tb.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath("/usr/bin/chromium"),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.WindowSize(1100, 900),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	tb.Cleanup(func() { cancel(); acancel() })
	// The first call starts the browser; it runs before the test's own
	// deadline so a slow start does not eat into it.
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatalf("start chromium: %v", err)
	}
	ctx, tcancel := context.WithTimeout(ctx, timeout)
	tb.Cleanup(tcancel)
	return ctx
}
