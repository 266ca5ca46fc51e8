// Package pause is the wait the relays, the consume loops and the retrying
// clients take between polls and after a failure: a timer that the context
// (or a wake-up) cuts short, growing by Backoff.
package pause

import (
	"context"
	"time"
)

// For waits d, or until ctx ends; it reports whether the whole d passed.
func For(ctx context.Context, d time.Duration) bool { return Until(ctx, d, nil) }

// Until waits d, or until wake fires or ctx ends; it reports whether the
// whole d passed. A nil wake never fires.
func Until(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-wake:
		return false
	case <-t.C:
		return true
	}
}

// Backoff is a pause that doubles after each failure, within Min..Max.
type Backoff struct{ Min, Max time.Duration }

// Next is the pause after one more failure: twice last (zero before the
// first failure), within Min..Max.
func (b Backoff) Next(last time.Duration) time.Duration {
	return min(max(last*2, b.Min), b.Max)
}
