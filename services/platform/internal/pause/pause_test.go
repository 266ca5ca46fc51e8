package pause_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"platform/internal/pause"
)

func TestBackoffDoublesWithinItsBounds(t *testing.T) {
	b := pause.Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	var got []time.Duration
	for d := time.Duration(0); len(got) < 6; {
		d = b.Next(d)
		got = append(got, d)
	}
	ms := time.Millisecond
	assert.Equal(t, []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second, time.Second}, got)
}

func TestUntilReturnsOnAWakeUpOrTheContextsEnd(t *testing.T) {
	wake := make(chan struct{}, 1)
	wake <- struct{}{}
	assert.False(t, pause.Until(context.Background(), time.Hour, wake), "a wake-up cuts the pause short")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.False(t, pause.For(ctx, time.Hour), "an ended context cuts the pause short")
	assert.True(t, pause.Until(context.Background(), time.Millisecond, nil), "a nil wake never fires")
}
