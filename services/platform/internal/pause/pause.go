// Package pause is the wait the relays and the consume loop take between
// polls and after a failure: a timer that the context cuts short.
package pause

import (
	"context"
	"time"
)

// For waits d, or until ctx ends; it reports whether the whole d passed.
func For(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
