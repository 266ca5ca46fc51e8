//go:build component

package eventstore_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"platform/internal/eventstore"
	"platform/internal/testdb"
)

var (
	db  *testdb.DB
	log = slog.New(slog.DiscardHandler)
)

func TestMain(m *testing.M) {
	testdb.Run(m, "eventstore", &db)
}

func reset(t *testing.T) *eventstore.Store {
	t.Helper()
	require.NoError(t, db.Truncate(context.Background(), "events", "relay_cursors"))
	return eventstore.New(db.Pool)
}

func event(device string, topic string) eventstore.Event {
	return eventstore.Event{EventID: uuid.New(), StreamID: device, Type: eventstore.TelemetryReceived, Topic: topic, Payload: []byte(`{"n":1}`)}
}

func appendEvents(t *testing.T, s *eventstore.Store, evs ...eventstore.Event) []uuid.UUID {
	t.Helper()
	streams := make([]string, len(evs))
	ids := make([]uuid.UUID, len(evs))
	for i, e := range evs {
		streams[i], ids[i] = e.StreamID, e.EventID
	}
	require.NoError(t, s.Write(context.Background(), streams, func(tx *eventstore.Tx) error { return tx.Append(context.Background(), evs) }))
	return ids
}

// gate holds a writer's transaction open until release; a failing test
// releases it too, so that the test database can be dropped.
func gate(t *testing.T) (released <-chan struct{}, release func()) {
	ch := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(ch) }) }
	t.Cleanup(release)
	return ch, release
}

// The bug class of SQLStreamStore, Eventuous and Marten: a transaction that
// took a lower seq commits after later ones; a relay that read by seq alone
// would move past it and never publish it.
func TestOpenTransactionIsPublishedOnceItCommits(t *testing.T) {
	s := reset(t)
	ctx := context.Background()
	slow := event("dev-slow", "t")
	holding := make(chan struct{})
	released, release := gate(t)
	done := make(chan error, 1)
	go func() {
		done <- s.Write(ctx, []string{"dev-slow"}, func(tx *eventstore.Tx) error {
			if err := tx.Append(ctx, []eventstore.Event{slow}); err != nil {
				return err
			}
			close(holding)
			<-released
			return nil
		})
	}()
	<-holding
	later := appendEvents(t, s, event("dev-a", "t"), event("dev-b", "t"))

	pub := &recorder{failAt: -1}
	relay := newRelay(t, pub, eventstore.RelayConfig{})
	n, err := relay.Drain(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "nothing committed after the open transaction is published before it ends")

	release()
	require.NoError(t, <-done)
	n, err = drain(t, relay)
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	assert.Equal(t, append([]uuid.UUID{slow.EventID}, later...), pub.ids(t))
}

// Per-device order on the bus is commit order because a writer that waits
// for a device's stream has no transaction id yet: it gets one after the
// stream's previous writer committed.
func TestWriterWaitingForAStreamHasNoTransactionID(t *testing.T) {
	s := reset(t)
	ctx := context.Background()
	first := event("dev-shared", "t")
	holding := make(chan struct{})
	released, release := gate(t)
	done := make(chan error, 2)
	go func() {
		done <- s.Write(ctx, []string{"dev-shared", "dev-x"}, func(tx *eventstore.Tx) error {
			if err := tx.Append(ctx, []eventstore.Event{first, event("dev-x", "t")}); err != nil {
				return err
			}
			close(holding)
			<-released
			return nil
		})
	}()
	<-holding
	second := event("dev-shared", "t")
	go func() {
		done <- s.Write(ctx, []string{"dev-a-first-in-key-order", "dev-shared"}, func(tx *eventstore.Tx) error {
			return tx.Append(ctx, []eventstore.Event{event("dev-a-first-in-key-order", "t"), second})
		})
	}()
	var waiting int
	var xid *string
	require.Eventually(t, func() bool {
		err := db.Pool.QueryRow(ctx, `
			SELECT count(*), max(backend_xid::text) FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND wait_event = 'advisory' AND datname = current_database()`).Scan(&waiting, &xid)
		return err == nil && waiting == 1
	}, 10*time.Second, 5*time.Millisecond, "the second writer waits on the stream lock")
	assert.Nil(t, xid, "a writer waiting for a stream has no transaction id")

	release()
	require.NoError(t, <-done)
	require.NoError(t, <-done)
	pub := &recorder{failAt: -1}
	_, err := drain(t, newRelay(t, pub, eventstore.RelayConfig{}))
	require.NoError(t, err)
	ids := pub.ids(t)
	require.Len(t, ids, 4)
	assert.Less(t, indexOf(ids, first.EventID), indexOf(ids, second.EventID))
	var v1, v2 int64
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT
		(SELECT version FROM events WHERE event_id = $1), (SELECT version FROM events WHERE event_id = $2)`,
		first.EventID, second.EventID).Scan(&v1, &v2))
	assert.Equal(t, [2]int64{1, 2}, [2]int64{v1, v2})
}

func indexOf(ids []uuid.UUID, id uuid.UUID) int {
	for i, x := range ids {
		if x == id {
			return i
		}
	}
	return -1
}

func TestDuplicateIDFailsTheWriteWithErrDuplicate(t *testing.T) {
	s := reset(t)
	e := event("dev-d", "t")
	appendEvents(t, s, e)
	again := e
	err := s.Write(context.Background(), []string{"dev-d"}, func(tx *eventstore.Tx) error {
		return tx.Append(context.Background(), []eventstore.Event{event("dev-d", "t"), again})
	})
	require.ErrorIs(t, err, eventstore.ErrDuplicate)
	var n int
	require.NoError(t, db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&n))
	assert.Equal(t, 1, n, "the whole transaction rolled back")
}

func TestAppendNewSkipsStoredAndRepeatedIDs(t *testing.T) {
	s := reset(t)
	stored := event("dev-n", "t")
	appendEvents(t, s, stored)
	first, second := event("dev-n", "t"), event("dev-n", "t")
	var appended []eventstore.Event
	err := s.Write(context.Background(), []string{"dev-n"}, func(tx *eventstore.Tx) (err error) {
		appended, err = tx.AppendNew(context.Background(), []eventstore.Event{first, stored, first, second})
		return err
	})
	require.NoError(t, err)
	require.Len(t, appended, 2)
	assert.Equal(t, []uuid.UUID{first.EventID, second.EventID}, []uuid.UUID{appended[0].EventID, appended[1].EventID})
	assert.Equal(t, []int64{2, 3}, []int64{appended[0].Version, appended[1].Version}, "versions follow the stored event without gaps")
	var n int
	require.NoError(t, db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM events WHERE stream_id = 'dev-n'`).Scan(&n))
	assert.Equal(t, 3, n)
}

func TestAppendRefusesAStreamItDidNotLock(t *testing.T) {
	s := reset(t)
	err := s.Write(context.Background(), []string{"dev-a"}, func(tx *eventstore.Tx) error {
		return tx.Append(context.Background(), []eventstore.Event{event("dev-b", "t")})
	})
	require.ErrorContains(t, err, `"dev-b": not locked`)
}
