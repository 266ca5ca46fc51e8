// Package kafkax wires franz-go: the producer behind the outbox relay and
// the dead-letter queue, and topic creation at start.
package kafkax

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"platform/internal/eventstore"
)

// NewProducer returns an idempotent producer (acks=all) for brokers. A
// record that cannot be delivered within deliveryTimeout fails, so that the
// relay backs off and retries from the outbox.
func NewProducer(brokers []string, deliveryTimeout time.Duration, opts ...kgo.Opt) (*kgo.Client, error) {
	base := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(2 * time.Millisecond),
		kgo.RecordDeliveryTimeout(deliveryTimeout),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ClientID("platform"),
	}
	return kgo.NewClient(append(base, opts...)...)
}

// EnsureTopics creates the topics that are missing (replication factor:
// the broker default). Existing topics are left alone.
func EnsureTopics(ctx context.Context, cl *kgo.Client, partitions int32, topics ...string) error {
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopics(ctx, partitions, -1, nil, topics...)
	if err != nil {
		return err
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}

// EnsureTopicsRetry keeps trying EnsureTopics until it succeeds or ctx ends.
func EnsureTopicsRetry(ctx context.Context, cl *kgo.Client, partitions int32, log *slog.Logger, topics ...string) {
	backoff := 500 * time.Millisecond
	for {
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := EnsureTopics(tctx, cl, partitions, topics...)
		cancel()
		if err == nil {
			log.Info("kafka topics ready", "topics", topics)
			return
		}
		log.Warn("kafka topics not ready, retrying", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// Publisher is the event relay's Publisher for Kafka: the message's topic,
// key and value become the record.
type Publisher struct{ Client *kgo.Client }

// Publish produces msgs and waits for the broker acks. It returns the
// length of the prefix of msgs that was acked.
func (p Publisher) Publish(ctx context.Context, msgs []eventstore.Message) (int, error) {
	recs := make([]*kgo.Record, len(msgs))
	index := make(map[*kgo.Record]int, len(msgs))
	for i, m := range msgs {
		recs[i] = &kgo.Record{Topic: m.Topic, Key: []byte(m.Key), Value: m.Value}
		index[recs[i]] = i
	}
	results := p.Client.ProduceSync(ctx, recs...)
	firstBad := len(msgs)
	var firstErr error
	for _, r := range results {
		if r.Err != nil {
			if i := index[r.Record]; i < firstBad {
				firstBad, firstErr = i, r.Err
			}
		}
	}
	return firstBad, firstErr
}

// Ping checks that a broker answers.
func Ping(ctx context.Context, cl *kgo.Client) error { return cl.Ping(ctx) }

// NewGroupConsumer returns a consumer-group client on topic that never
// commits on its own and blocks rebalances while a poll is being applied
// (use it with Consume).
func NewGroupConsumer(brokers []string, group, topic, clientID string, opts ...kgo.Opt) (*kgo.Client, error) {
	base := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.ClientID(clientID),
	}
	return kgo.NewClient(append(base, opts...)...)
}

// ApplyFunc applies one poll's records. Returning nil lets Consume commit
// their offsets; an error makes Consume retry the same records.
type ApplyFunc func(ctx context.Context, recs []*kgo.Record) error

// Consume polls cl (from NewGroupConsumer) and hands every poll to apply,
// retrying it with backoff (100 ms doubling to 10 s) until it succeeds,
// then commits that poll's offsets: an offset is never committed past a
// record that was not applied. onRetry (optional) sees each failure and
// onSuccess (optional) each success, e.g. for readiness. It returns when
// ctx ends; the caller closes cl.
func Consume(ctx context.Context, cl *kgo.Client, maxPoll int, apply ApplyFunc, onRetry func(error), onSuccess func(), log *slog.Logger) {
	for {
		fetches := cl.PollRecords(ctx, maxPoll)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			cl.AllowRebalance()
			return
		}
		fetches.EachError(func(t string, part int32, err error) {
			log.Warn("fetch error", "topic", t, "partition", part, "err", err)
		})
		recs := fetches.Records()
		if len(recs) > 0 {
			backoff := 100 * time.Millisecond
			for {
				err := apply(ctx, recs)
				if err == nil {
					if onSuccess != nil {
						onSuccess()
					}
					break
				}
				if ctx.Err() != nil {
					cl.AllowRebalance()
					return // not committed: redelivered after restart
				}
				if onRetry != nil {
					onRetry(err)
				}
				log.Warn("apply failed, retrying without committing", "err", err, "backoff", backoff.String(), "records", len(recs))
				select {
				case <-time.After(backoff):
				case <-ctx.Done():
					cl.AllowRebalance()
					return
				}
				backoff = min(backoff*2, 10*time.Second)
			}
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			if err := cl.CommitRecords(cctx, recs...); err != nil {
				log.Warn("offset commit failed; records will be redelivered (no-ops)", "err", err)
			}
			cancel()
		}
		cl.AllowRebalance()
	}
}
