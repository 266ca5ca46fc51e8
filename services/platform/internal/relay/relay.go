// Package relay is the one loop of both relays (the event store to Kafka,
// the command outbox to MQTT): lead, read a batch, publish it with a
// deadline outside any transaction, advance past what the broker
// acknowledged, then wait for a wake-up or the poll; back off after a
// failure, drain once more on stop, and return the error of a failure no
// retry can cure. Each relay plugs in its Steps (how it leads, reads,
// advances and is woken) and its Publisher.
//
// What the loop guarantees whatever the steps: Advance sees only messages
// the broker acknowledged, a leading part of the batch just read, after the
// publish returned. A crash between the two publishes them again: the
// consumers apply each message once.
package relay

import (
	"context"
	"errors"
	"time"
)

// Steps are what a relay plugs into the loop. The loop calls them from one
// goroutine.
type Steps[M any] interface {
	// Lead makes this relay its sink's only one (Lease), reading its
	// position; false when another relay leads.
	Lead(ctx context.Context) (bool, error)
	// Resign gives the leadership up at once (a no-op when not leading).
	Resign()
	// Read returns up to limit messages after the position, in order.
	Read(ctx context.Context, limit int) ([]M, error)
	// Advance moves the position past acked: a leading part of the batch
	// read last, which the broker acknowledged. Its ctx is not cut by the
	// stop of Run, so what the broker took leaves the queue even then.
	Advance(ctx context.Context, acked []M) error
	// Wait returns when there may be more to read: a wake-up, poll passed,
	// or ctx ended. An error says the leadership is lost; the loop leads
	// again.
	Wait(ctx context.Context, poll time.Duration) error
}

// Skipper is the step of a relay that can set a message aside (record it
// and advance past it) when its broker refused it for good (ErrRefused).
type Skipper[M any] interface {
	Skip(ctx context.Context, refused M, cause error) error
}

// Publisher sends messages to a broker in order and returns how many
// leading messages the broker acknowledged.
type Publisher[M any] interface {
	Publish(ctx context.Context, msgs []M) (acked int, err error)
}

// ErrRefused marks a publish error as permanent for the message after the
// acked ones (too large, not authorised): a relay with a Skipper sets it
// aside, so it never holds back the messages behind it.
var ErrRefused = errors.New("refused by the broker")

// ErrNotLeader: another relay of the sink leads; this one publishes nothing.
var ErrNotLeader = errors.New("another relay of this sink leads")

// Permanent marks err as a failure no retry can cure (a publisher that
// breaks its contract, a table or privilege the database lacks): Run stops
// and returns it, so the process exits and its supervisor can say so.
func Permanent(err error) error { return permanentError{err} }

type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

// IsPermanent reports whether err, or an error it wraps, is Permanent.
func IsPermanent(err error) bool { return errors.As(err, new(permanentError)) }

// Timing of a relay. Zero values take the defaults.
type Timing struct {
	BatchSize      int           // messages per publish, default 1000
	PollInterval   time.Duration // how often the relay looks without a wake-up, default 500ms
	PublishTimeout time.Duration // deadline of one publish (the broker round trip), default 30s
	MinBackoff     time.Duration // after a failure, default 100ms
	MaxBackoff     time.Duration // default 10s
	FlushTimeout   time.Duration // the final drain on stop, and each Advance, default 5s
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
