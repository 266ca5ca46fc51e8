package query

import (
	"context"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// NewConsumerClient returns a consumer-group client on topic that never
// commits on its own and blocks rebalances while a poll is being applied.
func NewConsumerClient(brokers []string, group, topic string, opts ...kgo.Opt) (*kgo.Client, error) {
	base := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.ClientID("platform-query"),
	}
	return kgo.NewClient(append(base, opts...)...)
}

// Consume polls cl and applies every poll with p in one transaction, then
// commits the offsets of that poll. A failing database is retried with
// backoff without committing; redelivered records are no-ops. It returns
// when ctx ends; the caller closes cl (leaving the group).
func Consume(ctx context.Context, cl *kgo.Client, p *Projector, log *slog.Logger) {
	log = log.With("component", "query-consumer")
	for {
		fetches := cl.PollRecords(ctx, 2000)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			cl.AllowRebalance()
			return
		}
		fetches.EachError(func(t string, part int32, err error) {
			log.Warn("fetch error", "topic", t, "partition", part, "err", err)
		})
		recs := fetches.Records()
		if len(recs) > 0 {
			msgs := make([]Message, len(recs))
			for i, r := range recs {
				msgs[i] = Message{Key: r.Key, Value: r.Value, Partition: r.Partition, Offset: r.Offset}
			}
			backoff := 100 * time.Millisecond
			for {
				_, err := p.Apply(ctx, msgs)
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					cl.AllowRebalance()
					return // not committed: redelivered after restart
				}
				log.Warn("apply failed, retrying", "err", err, "backoff", backoff)
				select {
				case <-time.After(backoff):
				case <-ctx.Done():
					cl.AllowRebalance()
					return
				}
				backoff = min(backoff*2, 10*time.Second)
			}
			// Committed only after the transaction that applied them.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			if err := cl.CommitRecords(cctx, recs...); err != nil {
				log.Warn("offset commit failed; records will be redelivered (no-ops)", "err", err)
			}
			cancel()
		}
		cl.AllowRebalance()
	}
}
