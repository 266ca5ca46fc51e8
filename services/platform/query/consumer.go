package query

import (
	"context"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"platform/internal/kafkax"
)

// MaxPoll bounds the records of one poll (and so of one Apply).
const MaxPoll = 2000

// Consume projects telemetry.v1 with cl (kafkax.NewGroupConsumer on the
// query group) until ctx ends: each poll is applied by p in one
// transaction, retried with backoff while the database fails, and its
// offsets committed only afterwards (each poll's spans by tracer, under
// the records' traceparent headers); redelivered records are no-ops, a
// record that is not a telemetry event goes to telemetry.v1.dlq.
func Consume(ctx context.Context, cl, dlq *kgo.Client, p *Projector, tracer trace.Tracer, log *slog.Logger) {
	kafkax.Consume(ctx, kafkax.ConsumerOptions{
		Client: cl, Name: ConsumerName, MaxPoll: MaxPoll, DeadLetters: dlq, Tracer: tracer,
		Log: log.With("component", "query-consumer"),
		Apply: func(ctx context.Context, recs []*kgo.Record) error {
			msgs := make([]Message, len(recs))
			for i, r := range recs {
				msgs[i] = Message{Key: r.Key, Value: r.Value, Partition: r.Partition, Offset: r.Offset}
			}
			_, err := p.Apply(ctx, msgs)
			return err
		},
	})
}
