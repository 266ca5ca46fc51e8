package detector

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"

	"platform/internal/kafkax"
	"platform/internal/tracing"
)

// MaxPoll bounds the records of one poll (and so of one Apply).
const MaxPoll = 1000

// Run consumes telemetry.v1 with cl (kafkax.NewGroupConsumer on the
// detector's group) until ctx ends: each poll is applied, retried with
// backoff while the scorer or the database fails, and committed only
// afterwards; a record that is not a telemetry event goes to
// telemetry.v1.dlq (producer dlq).
func Run(ctx context.Context, cl, dlq *kgo.Client, d *Detector) {
	kafkax.Consume(ctx, kafkax.ConsumerOptions{
		Client: cl, Name: d.cfg.Consumer, MaxPoll: MaxPoll, DeadLetters: dlq, Log: d.log, Tracer: d.cfg.Tracer,
		Apply: func(ctx context.Context, recs []*kgo.Record) error {
			msgs := make([]Message, len(recs))
			for i, r := range recs {
				msgs[i] = Message{Value: r.Value, Partition: r.Partition, Offset: r.Offset, Trace: tracing.BatchOf(ctx, i)}
			}
			_, err := d.Apply(ctx, msgs)
			return err
		},
		OnRetry:   func(error) { d.stalled.Store(true) },
		OnSuccess: func() { d.stalled.Store(false) },
	})
}

// Stalled is true while the last Apply failed (scorer or database down):
// telemetry is waiting to be judged.
func (d *Detector) Stalled() bool { return d.stalled.Load() }
