// Package relaytiming holds the knobs both relays share (the event relay to
// Kafka, the command relay to MQTT): how much they publish at once, how
// often they look, how long they wait on a broker and back off after one
// failed.
package relaytiming

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"platform/internal/pause"
	"time"
)

// Timing of a relay. Zero values take the defaults.
type Timing struct {
	BatchSize      int           // messages per publish, default 1000
	PollInterval   time.Duration // how often the relay looks without a wake-up, default 500ms
	PublishTimeout time.Duration // deadline of one publish (the broker round trip), default 30s
	MinBackoff     time.Duration // after a failure, default 100ms
	MaxBackoff     time.Duration // default 10s
	FlushTimeout   time.Duration // final drain on shutdown, default 5s
}

// SetDefaults fills the zero values.
func (t *Timing) SetDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if t.BatchSize <= 0 {
		t.BatchSize = 1000
	}
	def(&t.PollInterval, 500*time.Millisecond)
	def(&t.PublishTimeout, 30*time.Second)
	def(&t.MinBackoff, 100*time.Millisecond)
	def(&t.MaxBackoff, 10*time.Second)
	def(&t.FlushTimeout, 5*time.Second)
}

// Validate reports timing that cannot work.
func (t Timing) Validate() error {
	if t.MinBackoff > t.MaxBackoff {
		return errors.New("relay timing: MinBackoff > MaxBackoff")
	}
	return nil
}

// Backoff is the pause after one more failure: twice the last one (zero
// before the first failure), within MinBackoff..MaxBackoff.
func (t Timing) Backoff(last time.Duration) time.Duration {
	return pause.Backoff{Min: t.MinBackoff, Max: t.MaxBackoff}.Next(last)
}

// Publish sends msgs through publish within the PublishTimeout and returns
// how many leading messages the broker acked and its error. A publisher
// that claims more than it was given, or fewer than none, acked nothing.
func Publish[M any](ctx context.Context, t Timing, msgs []M, publish func(context.Context, []M) (int, error)) (int, error) {
	pctx, cancel := context.WithTimeout(ctx, t.PublishTimeout)
	defer cancel()
	acked, err := publish(pctx, msgs)
	if acked < 0 || acked > len(msgs) {
		return 0, fmt.Errorf("publisher acked %d of %d", acked, len(msgs))
	}
	return acked, err
}

// Flush drains once more within FlushTimeout, on shutdown, and logs the
// outcome: "<name> flushed", or "<name> final flush incomplete; <rest>"
// saying where what was not published waits.
func (t Timing) Flush(drain func(context.Context) (int, error), log *slog.Logger, name, rest string) {
	ctx, cancel := context.WithTimeout(context.Background(), t.FlushTimeout)
	defer cancel()
	n, err := drain(ctx)
	if err != nil {
		log.Warn(name+" final flush incomplete; "+rest, "published", n, "err", err)
		return
	}
	log.Info(name+" flushed", "published", n)
}
