package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"platform/internal/failpoint"
	"platform/internal/pause"
)

// Loop is one relay: its Steps and Publisher run by the one loop.
type Loop[M any] struct {
	name    string
	steps   Steps[M]
	pub     Publisher[M]
	timing  Timing
	log     *slog.Logger
	leading bool
}

// New checks t and returns the loop of the relay called name: in its log
// lines, and in its failpoint "<name>-after-publish" (the broker acked, the
// position not yet moved: where the fault tests kill the process).
func New[M any](name string, steps Steps[M], pub Publisher[M], t Timing, log *slog.Logger) (*Loop[M], error) {
	t.SetDefaults()
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return &Loop[M]{name: name, steps: steps, pub: pub, timing: t, log: log.With("component", name)}, nil
}

// Run relays until ctx ends, then drains once more within FlushTimeout and
// returns nil. A failure is retried with backoff (after resigning: the
// failure may have lost the leadership's session) unless it is Permanent:
// then Run returns it.
func (l *Loop[M]) Run(ctx context.Context) error {
	defer l.resign()
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		if !l.leading {
			if err := l.lead(ctx); err != nil && ctx.Err() == nil {
				if IsPermanent(err) {
					return l.failed(err)
				}
				l.log.Warn(l.name+" cannot lead, retrying", "err", err)
			}
			if !l.leading {
				pause.For(ctx, l.timing.PollInterval)
				continue
			}
		}
		n, err := l.step(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			continue // stopped mid-step: what was acked has advanced; the flush tries the rest
		case IsPermanent(err):
			return l.failed(err)
		case err != nil:
			backoff = pause.Backoff{Min: l.timing.MinBackoff, Max: l.timing.MaxBackoff}.Next(backoff)
			l.log.Warn(l.name+" failed, retrying", "err", err, "backoff", backoff)
			l.resign()
			pause.For(ctx, backoff)
			continue
		}
		backoff = 0
		if n == l.timing.BatchSize {
			continue // a full batch: more may wait
		}
		if err := l.steps.Wait(ctx, l.timing.PollInterval); err != nil && ctx.Err() == nil {
			l.log.Warn(l.name+" lost its leadership's session; leading again", "err", err)
			l.resign()
		}
	}
	l.flush()
	return nil
}

// Drain publishes batches until a batch is short or a step fails, leading
// first if this relay does not yet (ErrNotLeader when another leads). It
// returns how many messages it moved past.
func (l *Loop[M]) Drain(ctx context.Context) (int, error) {
	if !l.leading {
		if err := l.lead(ctx); err != nil {
			return 0, err
		}
		if !l.leading {
			return 0, ErrNotLeader
		}
	}
	total := 0
	for {
		n, err := l.step(ctx)
		total += n
		if err != nil || n < l.timing.BatchSize {
			return total, err
		}
	}
}

// Close gives up the leadership (Run does so itself when it returns).
func (l *Loop[M]) Close() { l.resign() }

// step reads one batch, publishes it and advances past what the broker
// acked (and past a message it refused for good, with a Skipper). It
// returns how many messages it moved past.
func (l *Loop[M]) step(ctx context.Context) (int, error) {
	msgs, err := l.steps.Read(ctx, l.timing.BatchSize)
	if err != nil || len(msgs) == 0 {
		return 0, err
	}
	acked, pubErr := l.publish(ctx, msgs)
	if acked < 0 || acked > len(msgs) {
		return 0, Permanent(fmt.Errorf("publisher acked %d of %d messages", acked, len(msgs)))
	}
	// Not ctx: what the broker acked is moved past even during the stop.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.timing.FlushTimeout)
	defer cancel()
	if acked > 0 {
		failpoint.Hit(l.name + "-after-publish")
		if err := l.steps.Advance(actx, msgs[:acked]); err != nil {
			return 0, err
		}
	}
	switch {
	case pubErr == nil:
		return acked, nil
	case errors.Is(pubErr, ErrRefused) && acked < len(msgs):
		skipper, ok := l.steps.(Skipper[M])
		if !ok {
			return acked, Permanent(fmt.Errorf("publish: %w; this relay cannot set a message aside, and it holds every message behind it", pubErr))
		}
		if err := skipper.Skip(actx, msgs[acked], pubErr); err != nil {
			return acked, err
		}
		return acked + 1, nil
	}
	return acked, fmt.Errorf("publish: %w", pubErr)
}

// publish sends msgs within the PublishTimeout.
func (l *Loop[M]) publish(ctx context.Context, msgs []M) (int, error) {
	pctx, cancel := context.WithTimeout(ctx, l.timing.PublishTimeout)
	defer cancel()
	return l.pub.Publish(pctx, msgs)
}

func (l *Loop[M]) lead(ctx context.Context) error {
	led, err := l.steps.Lead(ctx)
	l.leading = led && err == nil
	if l.leading {
		l.log.Info(l.name + " leads")
	}
	return err
}

func (l *Loop[M]) resign() {
	if l.leading {
		l.steps.Resign()
		l.leading = false
	}
}

// failed logs the failure that stops the relay and returns it.
func (l *Loop[M]) failed(err error) error {
	l.log.Error(l.name+" failed for good; stopping", "err", err)
	return err
}

// flush drains once more within FlushTimeout, on stop, and logs the outcome.
func (l *Loop[M]) flush() {
	if !l.leading {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.timing.FlushTimeout)
	defer cancel()
	n, err := l.Drain(ctx)
	if err != nil {
		l.log.Warn(l.name+" final flush incomplete; the rest waits at its position for the next start", "published", n, "err", err)
		return
	}
	l.log.Info(l.name+" flushed", "published", n)
}
