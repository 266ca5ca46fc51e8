package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"platform/internal/failpoint"
	"platform/internal/pause"
	"platform/internal/relaytiming"
)

// Publisher sends messages to a broker in order. It returns how many
// leading messages the broker acknowledged; on error the rest stay in the
// outbox and are retried (MQTT 3.1.1 gives no way to tell a message the
// broker will never take).
type Publisher interface {
	Publish(ctx context.Context, msgs []Message) (acked int, err error)
}

// Config of a Relay. Zero values take the defaults.
type Config struct {
	Sink string // required: which rows
	relaytiming.Timing
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

// Relay moves rows of one sink from the outbox to a Publisher.
type Relay struct {
	pool *pgxpool.Pool
	pub  Publisher
	cfg  Config
	log  *slog.Logger
}

// NewRelay checks cfg and returns a relay.
func NewRelay(pool *pgxpool.Pool, pub Publisher, cfg Config, log *slog.Logger) (*Relay, error) {
	cfg.Timing.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Relay{pool: pool, pub: pub, cfg: cfg, log: log.With("component", "outbox-relay", "sink", cfg.Sink)}, nil
}

// RunOnce publishes at most one batch and deletes the acked rows. It
// returns how many rows left the outbox (dead letters included). No
// transaction spans the broker round trip: the batch is read, published
// with a deadline, and only then are the acked rows deleted (with
// AfterPublish) in one short transaction. A crash in between publishes
// them again: duplicates on the wire, which every consumer absorbs.
// Concurrent RunOnce calls of one sink would publish rows twice; Run
// makes its relay the sink's only leader.
func (r *Relay) RunOnce(ctx context.Context) (int, error) {
	rows, err := r.pool.Query(ctx, `
		SELECT id, topic, key, payload, created_at FROM outbox
		WHERE sink = $1::text ORDER BY id LIMIT $2`, r.cfg.Sink, r.cfg.BatchSize)
	if err != nil {
		return 0, err
	}
	msgs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Message, error) {
		m := Message{Sink: r.cfg.Sink}
		return m, row.Scan(&m.ID, &m.Topic, &m.Key, &m.Payload, &m.CreatedAt)
	})
	if err != nil || len(msgs) == 0 {
		return 0, err
	}
	acked, pubErr := relaytiming.Publish(ctx, r.cfg.Timing, msgs, r.pub.Publish)
	if acked == 0 {
		return 0, publishError(pubErr)
	}
	failpoint.Hit("command-relay-after-publish") // acked, rows not yet deleted: the fault tests' kill
	done := msgs[:acked]
	// Not ctx: rows the broker acked leave the outbox even during shutdown.
	dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.FlushTimeout)
	defer dcancel()
	if err := pgx.BeginFunc(dctx, r.pool, func(tx pgx.Tx) error { return r.remove(dctx, tx, done) }); err != nil {
		return 0, err
	}
	return acked, publishError(pubErr)
}

// remove deletes the acked rows and runs AfterPublish on them.
func (r *Relay) remove(ctx context.Context, tx pgx.Tx, done []Message) error {
	ids := make([]int64, len(done))
	for i, m := range done {
		ids[i] = m.ID
	}
	if _, err := tx.Exec(ctx, `DELETE FROM outbox WHERE id = ANY($1)`, ids); err != nil {
		return err
	}
	if r.cfg.AfterPublish != nil {
		return r.cfg.AfterPublish(ctx, tx, done)
	}
	return nil
}

func publishError(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("publish: %w", err)
}

// Drain publishes batches until the outbox of the sink is empty or an
// error occurs.
func (r *Relay) Drain(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := r.RunOnce(ctx)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

// Run relays until ctx is cancelled, then drains once more within
// FlushTimeout. Only one relay per sink runs at a time, across processes:
// the leader holds a session advisory lock on the connection it LISTENs
// on; the others stand by and take over when that connection goes. The
// leader wakes on NOTIFY, polls as a fallback, and backs off exponentially
// while the broker fails.
func (r *Relay) Run(ctx context.Context) error {
	backoff := time.Duration(0)
	var leader *pgxpool.Conn
	defer func() {
		if leader != nil {
			r.cfg.Flush(r.Drain, r.log, "outbox", "rows stay for the next start")
			resign(leader)
		}
	}()
	for ctx.Err() == nil {
		if leader == nil {
			if leader = r.lead(ctx); leader == nil {
				if !pause.For(ctx, r.cfg.PollInterval) {
					return nil
				}
				continue
			}
		}
		if _, err := r.Drain(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			backoff = r.cfg.Backoff(backoff)
			r.log.Warn("outbox relay failed, retrying", "err", err, "backoff", backoff)
			if !pause.For(ctx, backoff) {
				return nil
			}
			continue
		}
		backoff = 0
		wctx, cancel := context.WithTimeout(ctx, r.cfg.PollInterval)
		_, err := leader.Conn().WaitForNotification(wctx)
		cancel()
		if err != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
			r.log.Warn("outbox leader connection lost; electing again", "err", err)
			resign(leader)
			leader = nil
		}
	}
	return nil
}

// lead returns a connection that holds the sink's advisory lock and
// LISTENs on its channel (LISTEN first, so no NOTIFY is missed before the
// next drain), or nil when another relay leads or the database is down.
func (r *Relay) lead(ctx context.Context) *pgxpool.Conn {
	c, err := r.pool.Acquire(ctx)
	if err != nil {
		return nil
	}
	var got bool
	if err := c.QueryRow(ctx, `SELECT pg_try_advisory_lock(`+leaderKey+`)`, r.cfg.Sink).Scan(&got); err != nil || !got {
		c.Release()
		return nil
	}
	if _, err := c.Exec(ctx, "LISTEN "+pgx.Identifier{Channel(r.cfg.Sink)}.Sanitize()); err != nil {
		resign(c)
		return nil
	}
	r.log.Info("outbox relay leads its sink")
	return c
}

// leaderKey is the session advisory lock of a sink's leader ($1 = sink):
// the one-bigint form, a key space apart from the event store's stream
// locks (two ints).
const leaderKey = `hashtextextended('platform-outbox-relay:' || $1::text, 0)`

// resign closes the leader's connection: its session, lock and LISTEN end
// with it (a pool connection released open would keep the lock).
func resign(c *pgxpool.Conn) {
	c.Conn().Close(context.Background()) //nolint:errcheck
	c.Release()
}
