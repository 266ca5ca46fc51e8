//go:build component

package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"platform/internal/eventstore"
	"platform/internal/migrations"
	"platform/internal/relay"
	"platform/internal/testdb"
)

// recorder is the broker side of the relay: it records what was published;
// failAt makes the N-th message overall (0-based) fail once.
type recorder struct {
	mu     sync.Mutex
	got    []eventstore.Message
	failAt int
	failed bool
}

func (r *recorder) Publish(_ context.Context, msgs []eventstore.Message) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, m := range msgs {
		if !r.failed && len(r.got) == r.failAt {
			r.failed = true
			return i, errors.New("broker unavailable")
		}
		r.got = append(r.got, m)
	}
	return len(msgs), nil
}

func (r *recorder) ids(t *testing.T) []uuid.UUID {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]uuid.UUID, len(r.got))
	for i, m := range r.got {
		var v struct {
			EventID uuid.UUID `json:"event_id"`
		}
		require.NoError(t, json.Unmarshal(m.Value, &v))
		out[i] = v.EventID
	}
	return out
}

func newRelay(t *testing.T, pub eventstore.Publisher, cfg eventstore.RelayConfig) *eventstore.Relay {
	t.Helper()
	r, err := eventstore.NewRelay(db.Pool, pub, cfg, log)
	require.NoError(t, err)
	t.Cleanup(r.Close)
	return r
}

// drain settles the cluster first: a neighbouring test package's
// transaction holds the relay's horizon back for a moment.
func drain(t *testing.T, r *eventstore.Relay) (int, error) {
	t.Helper()
	require.NoError(t, db.Settled(context.Background()))
	return r.Drain(context.Background())
}

func TestRelayPublishesEventsWithATopicOnceInOrder(t *testing.T) {
	s := reset(t)
	var want []uuid.UUID
	for i := 0; i < 10; i++ {
		want = append(want, appendEvents(t, s, event(fmt.Sprintf("dev-%d", i%2), "telemetry.v1"))...)
		appendEvents(t, s, event("dev-0", "")) // no topic: stored, never published
	}
	pub := &recorder{failAt: 4}
	relay := newRelay(t, pub, eventstore.RelayConfig{Timing: relay.Timing{BatchSize: 100}})

	n, err := drain(t, relay)
	require.Error(t, err, "the broker failed mid-batch")
	assert.Equal(t, 4, n)
	n, err = drain(t, relay)
	require.NoError(t, err)
	assert.Equal(t, 6, n, "the cursor moved past the acked events only")
	assert.Equal(t, want, pub.ids(t), "each event once, in commit order, across the failure")

	n, err = drain(t, relay)
	require.NoError(t, err)
	assert.Zero(t, n)
	for i, m := range pub.got {
		assert.Equal(t, "telemetry.v1", m.Topic)
		assert.Equal(t, fmt.Sprintf("dev-%d", i%2), m.Key)
	}
}

// Transaction ids are ordered as numbers, not as text: 9 < 10 < 11 but
// "10" < "11" < "9". Rows written with such ids (old ones, below every
// running transaction) are published in id order, each once, across batches.
func TestRelayOrdersTransactionIdsAsNumbersAcrossAPowerOfTen(t *testing.T) {
	reset(t)
	var want []uuid.UUID
	for _, tx := range []int{9, 10, 11, 99, 100} {
		id := uuid.New()
		_, err := db.Pool.Exec(context.Background(), `
			INSERT INTO events (event_id, stream_id, version, type, topic, payload, tx)
			VALUES ($1, 'dev-old', $2, 'TelemetryReceived', 't', '{"n":1}', $3::text::xid8)`,
			id, tx, strconv.Itoa(tx))
		require.NoError(t, err)
		want = append(want, id)
	}
	pub := &recorder{failAt: -1}
	relay := newRelay(t, pub, eventstore.RelayConfig{Timing: relay.Timing{BatchSize: 2}})
	n, err := drain(t, relay)
	require.NoError(t, err)
	assert.Equal(t, 5, n)
	assert.Equal(t, want, pub.ids(t), "in transaction id order, each once")
}

func TestOneRelayLeadsAndTheNextContinuesFromItsCursor(t *testing.T) {
	s := reset(t)
	ctx := context.Background()
	first := appendEvents(t, s, event("dev-a", "t"), event("dev-a", "t"))
	pubA, pubB := &recorder{failAt: -1}, &recorder{failAt: -1}
	a := newRelay(t, pubA, eventstore.RelayConfig{Sink: "kafka"})
	b := newRelay(t, pubB, eventstore.RelayConfig{Sink: "kafka"})
	n, err := drain(t, a)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	_, err = b.Drain(ctx)
	require.ErrorIs(t, err, eventstore.ErrNotLeader)

	second := appendEvents(t, s, event("dev-a", "t"))
	a.Close()
	n, err = drain(t, b)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, first, pubA.ids(t))
	assert.Equal(t, second, pubB.ids(t), "nothing published twice across the hand-over")
}

func TestRunWakesOnCommitAndFlushesOnStop(t *testing.T) {
	s := reset(t)
	pub := &recorder{failAt: -1}
	relay := newRelay(t, pub, eventstore.RelayConfig{Timing: relay.Timing{PollInterval: time.Minute}, Wake: s.Published()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()

	appendEvents(t, s, event("dev-w", "t"))
	require.Eventually(t, func() bool { return len(pub.ids(t)) == 1 }, 10*time.Second, 5*time.Millisecond)
	appendEvents(t, s, event("dev-w", "t"))
	require.Eventually(t, func() bool { return len(pub.ids(t)) == 2 }, 10*time.Second, 5*time.Millisecond,
		"woken by the commit, not the one-minute poll")
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("relay did not stop within 10s")
	}
}

// A database as the previous release left it: the events it had already
// published are not sent again; those still waiting in the outbox are sent
// once, with the very value the outbox held.
func TestMigrationPublishesWaitingOutboxRowsOnce(t *testing.T) {
	ctx := context.Background()
	old, err := testdb.CreateAt(ctx, "eventstore_v1", 4)
	require.NoError(t, err)
	defer old.Close()
	sent, waiting := uuid.New(), uuid.New()
	value := func(id uuid.UUID, v int) string {
		return fmt.Sprintf(`{"event_id":"%s","type":"TelemetryReceived","device_id":"dev-m","version":%d,"ts":"2026-01-01T00:00:0%dZ","metrics":{"t":%d},"recorded_at":"2026-01-01T00:00:09Z"}`, id, v, v, v)
	}
	for i, id := range []uuid.UUID{sent, waiting} {
		_, err := old.Pool.Exec(ctx, `INSERT INTO events (event_id, stream_id, version, type, payload, recorded_at)
			VALUES ($1, 'dev-m', $2, 'TelemetryReceived', $3::jsonb, '2026-01-01T00:00:09Z')`,
			id, i+1, fmt.Sprintf(`{"ts":"2026-01-01T00:00:0%dZ","metrics":{"t":%d}}`, i+1, i+1))
		require.NoError(t, err)
	}
	_, err = old.Pool.Exec(ctx, `INSERT INTO outbox (sink, topic, key, payload) VALUES
		('kafka', 'telemetry.v1', 'dev-m', convert_to($1, 'UTF8')), ('mqtt', 'devices/dev-m/commands', 'c1', '\x7b7d')`, value(waiting, 2))
	require.NoError(t, err)

	applied, err := migrations.Apply(ctx, old.Pool, log)
	require.NoError(t, err)
	assert.Contains(t, applied, 5)
	pub := &recorder{failAt: -1}
	relay, err := eventstore.NewRelay(old.Pool, pub, eventstore.RelayConfig{}, log)
	require.NoError(t, err)
	defer relay.Close()
	require.NoError(t, old.Settled(ctx))
	n, err := relay.Drain(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	assert.Equal(t, "telemetry.v1", pub.got[0].Topic)
	assert.JSONEq(t, value(waiting, 2), string(pub.got[0].Value))
	var kafkaRows, mqttRows, events int
	require.NoError(t, old.Pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM outbox WHERE sink = 'kafka'), (SELECT count(*) FROM outbox WHERE sink = 'mqtt'),
		(SELECT count(*) FROM events)`).Scan(&kafkaRows, &mqttRows, &events))
	assert.Equal(t, [3]int{0, 1, 2}, [3]int{kafkaRows, mqttRows, events}, "no event lost, the command outbox untouched")
}

// refuser is a broker that refuses one event for good (too large, say).
type refuser struct {
	recorder
	refuse uuid.UUID
}

func (r *refuser) Publish(ctx context.Context, msgs []eventstore.Message) (int, error) {
	for i, m := range msgs {
		if m.EventID == r.refuse {
			n, err := r.recorder.Publish(ctx, msgs[:i])
			if err != nil {
				return n, err
			}
			return i, fmt.Errorf("%w: MESSAGE_TOO_LARGE", eventstore.ErrRefused)
		}
	}
	return r.recorder.Publish(ctx, msgs)
}

// A poison event never holds the relay: it is recorded with the broker's
// error and the events behind it are published.
func TestRefusedEventIsDeadLetteredAndSkipped(t *testing.T) {
	s := reset(t)
	require.NoError(t, db.Truncate(context.Background(), "relay_dead_letters"))
	ids := appendEvents(t, s, event("dev-p", "t"), event("dev-p", "t"), event("dev-p", "t"))
	pub := &refuser{recorder: recorder{failAt: -1}, refuse: ids[1]}
	relay := newRelay(t, pub, eventstore.RelayConfig{})
	for published := 0; published < 3; {
		n, err := drain(t, relay)
		require.NoError(t, err)
		require.NotZero(t, n, "the relay moves on")
		published += n
	}
	assert.Equal(t, []uuid.UUID{ids[0], ids[2]}, pub.ids(t))
	var id uuid.UUID
	var reason string
	require.NoError(t, db.Pool.QueryRow(context.Background(), `SELECT event_id, error FROM relay_dead_letters`).Scan(&id, &reason))
	assert.Equal(t, ids[1], id)
	assert.Contains(t, reason, "MESSAGE_TOO_LARGE")
}

// A database this build does not fit (here: migrations 5 and on never
// applied, so no relay_cursors) stops the relay for good with an error
// naming what is missing, instead of a retry that can never succeed: the
// app acts on it (exits, and its supervisor says so).
func TestRelayOnADatabaseWithoutItsTablesStopsForGood(t *testing.T) {
	ctx := context.Background()
	old, err := testdb.CreateAt(ctx, "eventstore_unmigrated", 4)
	require.NoError(t, err)
	defer old.Close()
	r, err := eventstore.NewRelay(old.Pool, &recorder{failAt: -1}, eventstore.RelayConfig{}, log)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case err := <-done:
		require.Error(t, err)
		assert.True(t, relay.IsPermanent(err), "%v", err)
		assert.Contains(t, err.Error(), `load cursor: ERROR: relation "relay_cursors" does not exist`)
	case <-time.After(10 * time.Second):
		t.Fatal("the relay kept retrying on a database without relay_cursors")
	}
}
