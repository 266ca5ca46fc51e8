//go:build integration

package integration

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"platform/internal/contracts"
	"platform/internal/kafkax"
	"platform/internal/metrics"
)

// The shared consume loop on real Kafka: a transient failure is retried
// with offsets held; a poison record goes to <topic>.dlq with the consumer,
// error and attempt count, and the records behind it are applied in order.
func TestPoisonRecordGoesToTheDLQAndTheRestIsApplied(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prod := producer(t)
	topic := uniqueTopic(t, prod)
	dlq := kafkax.DLQTopic(topic)
	require.NoError(t, kafkax.EnsureTopics(ctx, prod, 1, dlq))
	values := []string{"a", "b", "poison", "flaky", "c"}
	for _, v := range values { // one key: one partition, this order
		require.NoError(t, prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("dev-1"), Value: []byte(v)}).FirstErr())
	}

	var mu sync.Mutex
	var applied []string
	flakyFailed := false
	apply := func(_ context.Context, recs []*kgo.Record) error {
		mu.Lock()
		defer mu.Unlock()
		for i, r := range recs {
			switch string(r.Value) {
			case "poison":
				return kafkax.Permanent(i, "not a reading", errors.New("value is poison"))
			case "flaky":
				if !flakyFailed {
					flakyFailed = true
					return errors.New("database unavailable")
				}
			}
		}
		for _, r := range recs {
			applied = append(applied, string(r.Value))
		}
		return nil
	}
	group := "it-poison-" + uuid.NewString()[:8]
	cl, err := kafkax.NewGroupConsumer([]string{cfg.KafkaBroker()}, group, topic, "it-poison")
	require.NoError(t, err)
	defer cl.Close()
	name := "it-consumer-" + uuid.NewString()[:8]
	done := make(chan struct{})
	go func() {
		kafkax.Consume(ctx, kafkax.ConsumerOptions{Client: cl, Name: name, Apply: apply, DeadLetters: prod, MinBackoff: 10 * time.Millisecond, Log: log})
		close(done)
	}()
	defer func() { cancel(); <-done }()

	require.Eventually(t, func() bool { return lag(t, prod, group, topic) == 0 }, 30*time.Second, 50*time.Millisecond, "every offset committed")
	mu.Lock()
	got := dedupe(applied)
	mu.Unlock()
	assert.Equal(t, []string{"a", "b", "flaky", "c"}, got, "everything but the poison, in order")
	assert.Equal(t, int64(1), metrics.DeadLetterCounts()[name])

	rd, err := kgo.NewClient(kgo.SeedBrokers(cfg.KafkaBroker()), kgo.ConsumeTopics(dlq), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer rd.Close()
	pctx, pcancel := context.WithTimeout(ctx, 20*time.Second)
	defer pcancel()
	fs := rd.PollFetches(pctx)
	require.NoError(t, fs.Err())
	recs := fs.Records()
	require.Len(t, recs, 1)
	assert.Equal(t, "dev-1", string(recs[0].Key))
	require.NoError(t, contracts.Default().Validate(contracts.DeadLetter, recs[0].Value))
	var dl kafkax.DeadLetter
	require.NoError(t, json.Unmarshal(recs[0].Value, &dl))
	assert.Equal(t, "kafka", dl.Source)
	assert.Equal(t, topic, dl.Topic)
	assert.Equal(t, name, dl.Consumer)
	assert.Equal(t, "not a reading", dl.Reason)
	assert.Equal(t, "value is poison", dl.Error)
	assert.Equal(t, 1, dl.Attempts)
	assert.Equal(t, int64(2), *dl.Offset)
	raw, err := base64.StdEncoding.DecodeString(dl.PayloadBase64)
	require.NoError(t, err)
	assert.Equal(t, "poison", string(raw))
}

// dedupe drops repeats (a poll is applied again after a failure), keeping
// first-seen order.
func dedupe(vs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range vs {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
