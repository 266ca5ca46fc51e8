package detector

import (
	"context"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"

	"platform/internal/kafkax"
)

// MaxPoll bounds the records of one poll (and so of one Apply).
const MaxPoll = 1000

// Run consumes telemetry.v1 with cl (kafkax.NewGroupConsumer on the
// detector's group) until ctx ends: each poll is applied, retried with
// backoff while the scorer or the database fails, and committed only
// afterwards.
func Run(ctx context.Context, cl *kgo.Client, d *Detector, log *slog.Logger) {
	log = log.With("component", "anomaly-detector")
	kafkax.Consume(ctx, cl, MaxPoll, func(ctx context.Context, recs []*kgo.Record) error {
		msgs := make([]Message, len(recs))
		for i, r := range recs {
			msgs[i] = Message{Value: r.Value, Partition: r.Partition, Offset: r.Offset}
		}
		_, err := d.Apply(ctx, msgs)
		return err
	}, func(error) { d.stalled.Store(true) }, func() { d.stalled.Store(false) }, log)
}

// Stalled is true while the last Apply failed (scorer or database down):
// telemetry is waiting to be judged.
func (d *Detector) Stalled() bool { return d.stalled.Load() }
