package outbox

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"platform/internal/relay"
)

// Relay moves rows of one sink from the outbox to a Publisher: the relay
// loop (package relay) on the steps below. No transaction spans the broker
// round trip: a batch is read, published with a deadline, and only then are
// the acked rows deleted (with AfterPublish) in one short transaction. A
// crash in between publishes them again: duplicates on the wire, which
// every consumer absorbs. One relay per sink leads, across processes: the
// leader holds a session advisory lock on the connection it LISTENs on; the
// others stand by and take over when that connection goes. The leader
// wakes on NOTIFY and polls as a fallback.
type Relay = relay.Loop[Message]

// Publisher sends messages to a broker in order. It returns how many
// leading messages the broker acknowledged; on error the rest stay in the
// outbox and are retried (MQTT 3.1.1 gives no way to tell a message the
// broker will never take).
type Publisher = relay.Publisher[Message]

// Config of a Relay. Zero values take the defaults.
type Config struct {
	Sink string // required: which rows
	relay.Timing
	// AfterPublish runs in the transaction that deletes the acked rows.
	AfterPublish func(ctx context.Context, tx pgx.Tx, acked []Message) error
}

// Validate reports a config that cannot work.
func (c Config) Validate() error {
	if c.Sink != SinkMQTT {
		return fmt.Errorf("outbox relay: unknown sink %q", c.Sink)
	}
	return c.Timing.Validate()
}

// NewRelay checks cfg and returns a relay.
func NewRelay(pool *pgxpool.Pool, pub Publisher, cfg Config, log *slog.Logger) (*Relay, error) {
	cfg.Timing.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	steps := &outboxSteps{pool: pool, lease: relay.NewLease(pool, "platform-outbox-relay:"+cfg.Sink), cfg: cfg}
	return relay.New("command-relay", steps, pub, cfg.Timing, log.With("sink", cfg.Sink))
}

// outboxSteps are the command relay's steps: the outbox rows are its queue,
// deleted once acked; NOTIFY on the lease's connection wakes it.
type outboxSteps struct {
	pool  *pgxpool.Pool
	lease *relay.Lease
	cfg   Config

	conn *pgxpool.Conn // the lease's, LISTENing, while leading
}

// Lead takes the sink's lease and LISTENs on its connection; LISTEN comes
// before the first read, so no NOTIFY is missed.
func (s *outboxSteps) Lead(ctx context.Context) (bool, error) {
	conn, err := s.lease.Acquire(ctx)
	if conn == nil {
		return false, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{Channel(s.cfg.Sink)}.Sanitize()); err != nil {
		s.lease.Release()
		return false, relay.SQLError(err)
	}
	s.conn = conn
	return true, nil
}

// Resign ends the lease's session: its lock and LISTEN end with it.
func (s *outboxSteps) Resign() {
	s.lease.Release()
	s.conn = nil
}

// Read returns the oldest rows of the sink.
func (s *outboxSteps) Read(ctx context.Context, limit int) ([]Message, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT id, topic, key, payload, created_at FROM outbox
		WHERE sink = $1::text ORDER BY id LIMIT $2`, s.cfg.Sink, limit)
	if err != nil {
		return nil, relay.SQLError(err)
	}
	msgs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Message, error) {
		m := Message{Sink: s.cfg.Sink}
		return m, row.Scan(&m.ID, &m.Topic, &m.Key, &m.Payload, &m.CreatedAt)
	})
	return msgs, relay.SQLError(err)
}

// Advance deletes the acked rows and runs AfterPublish on them, in one
// transaction.
func (s *outboxSteps) Advance(ctx context.Context, acked []Message) error {
	ids := make([]int64, len(acked))
	for i, m := range acked {
		ids[i] = m.ID
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM outbox WHERE id = ANY($1)`, ids); err != nil {
			return err
		}
		if s.cfg.AfterPublish != nil {
			return s.cfg.AfterPublish(ctx, tx, acked)
		}
		return nil
	})
	return relay.SQLError(err)
}

// Wait waits for a NOTIFY on the lease's connection, or the poll. An error
// other than the poll's end says that connection, and the lease, is gone.
func (s *outboxSteps) Wait(ctx context.Context, poll time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, poll)
	defer cancel()
	_, err := s.conn.Conn().WaitForNotification(wctx)
	if err != nil && wctx.Err() != nil {
		return nil // the poll passed, or ctx ended
	}
	return err
}
