// Package kafkax wires franz-go: the producer behind the event relay and
// the dead-letter queues, the shared consume loop, and topic creation at
// start.
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
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"platform/internal/eventstore"
	"platform/internal/pause"
	"platform/internal/tracing"
)

// NewProducer returns an idempotent producer (acks=all) for brokers. A
// record that cannot be delivered within deliveryTimeout fails, so that the
// event relay backs off and retries from its cursor.
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
		if !pause.For(ctx, backoff) {
			return
		}
		backoff = pause.Backoff{Min: 500 * time.Millisecond, Max: 10 * time.Second}.Next(backoff)
	}
}

// Publisher is the event relay's Publisher for Kafka: the message's topic,
// key and value become the record.
type Publisher struct {
	Client *kgo.Client
	// Tracer makes the relay's spans (tracing.Relay); nil: none.
	Tracer trace.Tracer
}

// Publish produces msgs and waits for the broker acks. It returns the
// length of the prefix of msgs that was acked. Each distinct stored trace
// context of the batch gets one span, child of it (a batch of readings
// posted in one request is one span, not one per reading), and its records
// carry that span's traceparent header.
func (p Publisher) Publish(ctx context.Context, msgs []eventstore.Message) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	parents := make([]string, len(msgs))
	for i, m := range msgs {
		parents[i] = m.TraceContext
	}
	spans := tracing.StartBatch(ctx, p.Tracer, "publish "+msgs[0].Topic, parents, trace.SpanKindProducer,
		attribute.String("messaging.system", "kafka"))
	recs := make([]*kgo.Record, len(msgs))
	index := make(map[*kgo.Record]int, len(msgs))
	for i, m := range msgs {
		recs[i] = &kgo.Record{Topic: m.Topic, Key: []byte(m.Key), Value: m.Value}
		if tp := spans.TraceparentOf(i); len(tp) > 0 {
			recs[i].Headers = []kgo.RecordHeader{{Key: tracing.Header, Value: tp}}
		}
		index[recs[i]] = i
	}
	results := p.Client.ProduceSync(ctx, recs...)
	defer func() { spans.End(results.FirstErr()) }()
	firstBad := len(msgs)
	var firstErr error
	for _, r := range results {
		if r.Err != nil {
			if i := index[r.Record]; i < firstBad {
				firstBad, firstErr = i, r.Err
			}
		}
	}
	if refused(firstErr) {
		firstErr = fmt.Errorf("%w: %w", eventstore.ErrRefused, firstErr)
	}
	return firstBad, firstErr
}

// refused: errors the broker gives for the record itself, that no retry
// can cure.
func refused(err error) bool {
	for _, e := range []error{kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidRecord,
		kerr.CorruptMessage, kerr.TopicAuthorizationFailed, kerr.InvalidTopicException} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Ping checks that a broker answers.
func Ping(ctx context.Context, cl *kgo.Client) error { return cl.Ping(ctx) }

// Traceparent is rec's traceparent header ("" without one).
func Traceparent(rec *kgo.Record) string {
	for _, h := range rec.Headers {
		if h.Key == tracing.Header {
			return string(h.Value)
		}
	}
	return ""
}

// Traceparents are the traceparent headers of recs.
func Traceparents(recs []*kgo.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = Traceparent(r)
	}
	return out
}
