//go:build component

package outbox_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"platform/internal/outbox"
	"platform/internal/relay"
	"platform/internal/testdb"
)

var (
	db  *testdb.DB
	log = slog.New(slog.DiscardHandler)
)

func TestMain(m *testing.M) {
	testdb.Run(m, "outbox", &db)
}

// recorder is a broker: it records what it acks and notes whether any
// transaction was open while it was called.
type recorder struct {
	mu         sync.Mutex
	got        []string
	openTxSeen bool
}

func (p *recorder) Publish(ctx context.Context, msgs []outbox.Message) (int, error) {
	var open int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'`).Scan(&open); err != nil {
		return 0, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.openTxSeen = p.openTxSeen || open > 0
	for _, m := range msgs {
		p.got = append(p.got, m.Key)
	}
	return len(msgs), nil
}

func (p *recorder) published() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.got...)
}

func enqueue(t *testing.T, keys ...string) {
	t.Helper()
	msgs := make([]outbox.Message, len(keys))
	for i, k := range keys {
		msgs[i] = outbox.Message{Topic: "t", Key: k, Payload: []byte(k)}
	}
	require.NoError(t, pgx.BeginFunc(context.Background(), db.Pool, func(tx pgx.Tx) error {
		return outbox.Enqueue(context.Background(), tx, outbox.SinkMQTT, msgs)
	}))
}

// The broker round trip happens outside any transaction.
func TestNoTransactionSpansThePublish(t *testing.T) {
	require.NoError(t, db.Truncate(context.Background(), "outbox"))
	enqueue(t, "a", "b", "c")
	pub := &recorder{}
	r, err := outbox.NewRelay(db.Pool, pub, outbox.Config{Sink: outbox.SinkMQTT}, log)
	require.NoError(t, err)
	defer r.Close() // Drain led the sink; the next test's relays lead it
	n, err := r.Drain(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	assert.Equal(t, []string{"a", "b", "c"}, pub.published())
	assert.False(t, pub.openTxSeen, "no transaction open during the publish")
	assert.Zero(t, db.Count(t, "outbox"))
}

// Two relays of one sink (two app instances): one leads, every row is
// published once, in order.
func TestTwoRelaysOfOneSinkPublishEachRowOnce(t *testing.T) {
	require.NoError(t, db.Truncate(context.Background(), "outbox"))
	ctx, cancel := context.WithCancel(context.Background())
	pub := &recorder{}
	var wg sync.WaitGroup
	for range 2 {
		r, err := outbox.NewRelay(db.Pool, pub, outbox.Config{Sink: outbox.SinkMQTT, Timing: relay.Timing{PollInterval: 20 * time.Millisecond, BatchSize: 7}}, log)
		require.NoError(t, err)
		wg.Add(1)
		go func() { defer wg.Done(); _ = r.Run(ctx) }()
	}
	var want []string
	for i := range 20 {
		keys := make([]string, 10)
		for j := range keys {
			keys[j] = fmt.Sprintf("k%03d", i*10+j)
		}
		enqueue(t, keys...)
		want = append(want, keys...)
	}
	require.Eventually(t, func() bool { return len(pub.published()) >= len(want) && db.Count(t, "outbox") == 0 }, 20*time.Second, 20*time.Millisecond)
	cancel()
	wg.Wait()
	assert.Equal(t, want, pub.published())
}
