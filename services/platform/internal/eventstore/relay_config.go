package eventstore

import (
	"context"
	"errors"
	"time"

	"platform/internal/relaytiming"
)

// Publisher sends messages to a broker in order. It returns how many
// leading messages the broker acknowledged. An error that wraps ErrRefused
// says the broker refused the message after the acked ones for good (too
// large, not authorised): the relay records it in relay_dead_letters and
// moves past it, so it never holds back the events behind it.
type Publisher interface {
	Publish(ctx context.Context, msgs []Message) (acked int, err error)
}

// RelayConfig of a Relay. Zero values take the defaults.
type RelayConfig struct {
	Sink string // names the relay's cursor and leader lock, default "kafka"
	relaytiming.Timing
	// Wake, when it fires, makes the relay look at once (Store.Published).
	Wake <-chan struct{}
	// Observe, if set, sees every acked message with the time of the ack.
	Observe func(m Message, ackedAt time.Time)
}

func (c *RelayConfig) setDefaults() {
	if c.Sink == "" {
		c.Sink = "kafka"
	}
	c.Timing.SetDefaults()
}

// ErrRefused marks a publish error as permanent for that message.
var ErrRefused = errors.New("refused by the broker")

// ErrNotLeader: another relay of the sink leads; this one publishes nothing.
var ErrNotLeader = errors.New("another relay of this sink leads")
