package query

import (
	"context"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"

	"platform/internal/kafkax"
)

// MaxPoll bounds the records of one poll (and so of one Apply).
const MaxPoll = 2000

// Consume projects telemetry.v1 with cl (kafkax.NewGroupConsumer on the
// query group) until ctx ends: each poll is applied by p in one
// transaction, retried with backoff while the database fails, and its
// offsets committed only afterwards; redelivered records are no-ops.
func Consume(ctx context.Context, cl *kgo.Client, p *Projector, log *slog.Logger) {
	log = log.With("component", "query-consumer")
	kafkax.Consume(ctx, cl, MaxPoll, func(ctx context.Context, recs []*kgo.Record) error {
		msgs := make([]Message, len(recs))
		for i, r := range recs {
			msgs[i] = Message{Key: r.Key, Value: r.Value, Partition: r.Partition, Offset: r.Offset}
		}
		_, err := p.Apply(ctx, msgs)
		return err
	}, nil, nil, log)
}
