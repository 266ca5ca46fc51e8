package eventstore

import (
	"context"
	"errors"
	"time"
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
	Sink           string        // names the relay's cursor and leader lock, default "kafka"
	BatchSize      int           // events per publish, default 1000
	PollInterval   time.Duration // how often a relay looks without a wake-up, default 500ms
	PublishTimeout time.Duration // deadline of one publish, default 30s
	MinBackoff     time.Duration // after a failure, default 100ms
	MaxBackoff     time.Duration // default 10s
	FlushTimeout   time.Duration // final drain on shutdown, default 5s
	// Wake, when it fires, makes the relay look at once (Store.Published).
	Wake <-chan struct{}
	// Observe, if set, sees every acked message with the time of the ack.
	Observe func(m Message, ackedAt time.Time)
}

func (c *RelayConfig) setDefaults() {
	if c.Sink == "" {
		c.Sink = "kafka"
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 500 * time.Millisecond
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 30 * time.Second
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 10 * time.Second
	}
	if c.FlushTimeout <= 0 {
		c.FlushTimeout = 5 * time.Second
	}
}

// Validate reports a config that cannot work.
func (c RelayConfig) Validate() error {
	if c.MinBackoff > c.MaxBackoff {
		return errors.New("event relay: MinBackoff > MaxBackoff")
	}
	return nil
}

// ErrRefused marks a publish error as permanent for that message.
var ErrRefused = errors.New("refused by the broker")

// ErrNotLeader: another relay of the sink leads; this one publishes nothing.
var ErrNotLeader = errors.New("another relay of this sink leads")
