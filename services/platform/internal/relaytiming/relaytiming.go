// Package relaytiming holds the knobs both relays share (the event relay to
// Kafka, the command relay to MQTT): how much they publish at once, how
// often they look, how long they wait on a broker and back off after one
// failed.
package relaytiming

import (
	"errors"
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
