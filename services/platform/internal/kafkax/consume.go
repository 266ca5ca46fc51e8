package kafkax

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"platform/internal/pause"
	"platform/internal/tracing"
)

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
		// A member killed -9 holds its partitions until its session times out:
		// 10 s (not 45) bounds how long a crash stalls consumption.
		kgo.SessionTimeout(10 * time.Second),
		kgo.HeartbeatInterval(time.Second),
		kgo.ClientID(clientID),
	}
	return kgo.NewClient(append(base, opts...)...)
}

// ApplyFunc applies one poll's records. nil lets Consume commit their
// offsets. An error wrapping a *PermanentError sends that record to the
// dead-letter topic and applies the others again; any other error is
// transient: the same records are retried with backoff.
type ApplyFunc func(ctx context.Context, recs []*kgo.Record) error

// PermanentError says that applying the record at Index of the records
// handed to Apply can never succeed (it fails its schema, a downstream
// service refuses it with a 4xx, its value is outside a model's domain).
// Index -1: the handler cannot tell which record it is; Consume then
// applies them one at a time.
type PermanentError struct {
	Index  int
	Reason string // short and stable, e.g. "not a telemetry event"
	Err    error
}

func (e *PermanentError) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent marks err as permanent for the record at index (see
// PermanentError).
func Permanent(index int, reason string, err error) error {
	return &PermanentError{Index: index, Reason: reason, Err: err}
}

// DecodeEach decodes every message in order; the first that does not
// decode is a *PermanentError with its index and reason.
func DecodeEach[M, T any](msgs []M, decode func(M) (T, error), reason string) ([]T, error) {
	out := make([]T, 0, len(msgs))
	for i, m := range msgs {
		v, err := decode(m)
		if err != nil {
			return nil, Permanent(i, reason, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// ConsumerOptions configure Consume. Client, Name, Apply and DeadLetters
// are required.
type ConsumerOptions struct {
	Client      *kgo.Client // from NewGroupConsumer
	Name        string      // the consumer, in logs, dead letters and counters
	MaxPoll     int         // records per poll (and so per Apply), default 1000
	Apply       ApplyFunc
	DeadLetters *kgo.Client // producer of <topic>.dlq records
	OnRetry     func(error) // optional: each transient failure (e.g. readiness)
	OnSuccess   func()      // optional: each applied poll
	// Tracer, if set, makes one span per Apply for each distinct
	// traceparent header among its records (tracing.StartBatch); Apply finds
	// record i's with tracing.BatchOf(ctx, i).
	Tracer     trace.Tracer
	MinBackoff time.Duration // first retry delay, default 100 ms (doubles)
	MaxBackoff time.Duration // default 10 s
	Log        *slog.Logger
}

func (o *ConsumerOptions) setDefaults() {
	if o.MaxPoll <= 0 {
		o.MaxPoll = 1000
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Second
	}
	if o.OnRetry == nil {
		o.OnRetry = func(error) {}
	}
	if o.OnSuccess == nil {
		o.OnSuccess = func() {}
	}
	o.Log = o.Log.With("consumer", o.Name)
}

// DLQTopic is the dead-letter topic of topic.
func DLQTopic(topic string) string { return topic + ".dlq" }

// Consume polls opts.Client and hands every poll to opts.Apply until ctx
// ends, then returns (the caller closes the client). A poll's offsets are
// committed only once every record of it was applied or dead-lettered: a
// transient failure holds the partitions and retries with capped backoff;
// a permanent one moves the record to <topic>.dlq (counted, logged WARN)
// and the rest go on, so a poison record never holds a partition.
func Consume(ctx context.Context, opts ConsumerOptions) {
	opts.setDefaults()
	cl := opts.Client
	defer cl.AllowRebalance()
	for {
		fetches := cl.PollRecords(ctx, opts.MaxPoll)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			return
		}
		fetches.EachError(func(t string, part int32, err error) {
			opts.Log.Warn("fetch error", "topic", t, "partition", part, "err", err)
		})
		recs := fetches.Records()
		if len(recs) > 0 {
			if !settle(ctx, &opts, recs) {
				return // not committed: redelivered after restart
			}
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			if err := cl.CommitRecords(cctx, recs...); err != nil {
				opts.Log.Warn("offset commit failed; records will be redelivered (no-ops)", "err", err)
			}
			cancel()
		}
		cl.AllowRebalance()
	}
}

// settle applies recs until each is applied or dead-lettered; false when
// ctx ended first.
func settle(ctx context.Context, o *ConsumerOptions, recs []*kgo.Record) bool {
	backoff := o.MinBackoff
	for attempt := 1; len(recs) > 0; attempt++ {
		err := applyTraced(ctx, o, recs)
		if err == nil {
			o.OnSuccess()
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		var perm *PermanentError
		if errors.As(err, &perm) {
			i := perm.Index
			if i < 0 || i >= len(recs) {
				if len(recs) > 1 {
					return settleEach(ctx, o, recs)
				}
				i = 0
			}
			if !deadLetter(ctx, o, recs[i], perm, attempt) {
				return false
			}
			recs = append(recs[:i:i], recs[i+1:]...) // the others are applied again: idempotent
			continue
		}
		o.OnRetry(err)
		o.Log.Warn("apply failed, retrying without committing", "err", err, "backoff", backoff.String(), "records", len(recs))
		if !pause.For(ctx, backoff) {
			return false
		}
		backoff = pause.Backoff{Min: o.MinBackoff, Max: o.MaxBackoff}.Next(backoff)
	}
	return true
}

// applyTraced is one Apply of recs under their spans: a failed attempt's
// spans are marked failed, the retry makes new ones.
func applyTraced(ctx context.Context, o *ConsumerOptions, recs []*kgo.Record) error {
	spans := tracing.StartBatch(ctx, o.Tracer, o.Name+" "+recs[0].Topic, Traceparents(recs), trace.SpanKindConsumer,
		attribute.String("messaging.system", "kafka"))
	err := o.Apply(tracing.WithBatch(ctx, spans), recs)
	spans.End(err)
	return err
}

// settleEach settles recs one at a time, to find which is permanent.
func settleEach(ctx context.Context, o *ConsumerOptions, recs []*kgo.Record) bool {
	for _, r := range recs {
		if !settle(ctx, o, []*kgo.Record{r}) {
			return false
		}
	}
	return true
}

// deadLetter produces rec to its DLQ topic, retrying while the broker
// fails (the offset waits for it); false when ctx ended first.
func deadLetter(ctx context.Context, o *ConsumerOptions, rec *kgo.Record, perm *PermanentError, attempts int) bool {
	dl := DeadLetter{
		Source: "kafka", Topic: rec.Topic, Reason: perm.Reason, Error: perm.Err.Error(),
		Consumer: o.Name, Attempts: attempts, Partition: &rec.Partition, Offset: &rec.Offset, Key: string(rec.Key),
	}
	dl.SetPayload(rec.Value, time.Now())
	backoff := o.MinBackoff
	for {
		err := PublishDeadLetter(ctx, o.DeadLetters, DLQTopic(rec.Topic), rec.Key, dl)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return false
		}
		o.Log.Warn("dead-letter topic unavailable, retrying", "topic", DLQTopic(rec.Topic), "err", err, "backoff", backoff.String())
		if !pause.For(ctx, backoff) {
			return false
		}
		backoff = pause.Backoff{Min: o.MinBackoff, Max: o.MaxBackoff}.Next(backoff)
	}
	CountDeadLetter(o.Name)
	o.Log.Warn("record dead-lettered", "dlq", DLQTopic(rec.Topic), "partition", rec.Partition, "offset", rec.Offset,
		"key", string(rec.Key), "reason", perm.Reason, "err", perm.Err, "attempts", attempts)
	return true
}

var errNoProducer = errors.New("no dead-letter producer configured")

// PublishDeadLetter produces dl to topic (key: the original record's or
// MQTT topic's) and waits for the broker's ack.
func PublishDeadLetter(ctx context.Context, cl *kgo.Client, topic string, key []byte, dl DeadLetter) error {
	if cl == nil {
		return errNoProducer
	}
	b, err := dl.Marshal()
	if err != nil {
		return err
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: key, Value: b}).FirstErr(); err != nil {
		return fmt.Errorf("dead-letter to %s: %w", topic, err)
	}
	return nil
}
