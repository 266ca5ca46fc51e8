package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Publisher sends messages to a broker in order. It returns how many
// leading messages the broker acknowledged; on error the rest stay in the
// outbox and are retried.
type Publisher interface {
	Publish(ctx context.Context, msgs []Message) (acked int, err error)
}

// Config of a Relay. Zero values take the defaults.
type Config struct {
	Sink         string        // required: which rows
	BatchSize    int           // rows per publish, default 1000
	PollInterval time.Duration // fallback when no NOTIFY arrives, default 500ms
	MinBackoff   time.Duration // after a failed publish, default 100ms
	MaxBackoff   time.Duration // default 10s
	FlushTimeout time.Duration // final drain on shutdown, default 5s
	// AfterPublish runs in the transaction that deletes the acked rows.
	AfterPublish func(ctx context.Context, tx pgx.Tx, acked []Message) error
	// Observe, if set, sees every acked message with the time of the ack.
	Observe func(m Message, ackedAt time.Time)
}

func (c *Config) setDefaults() {
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 500 * time.Millisecond
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 10 * time.Second
	}
	if c.FlushTimeout <= 0 {
		c.FlushTimeout = 5 * time.Second
	}
}

// Validate reports a config that cannot work.
func (c Config) Validate() error {
	if c.Sink != SinkKafka && c.Sink != SinkMQTT {
		return fmt.Errorf("outbox relay: unknown sink %q", c.Sink)
	}
	if c.MinBackoff > c.MaxBackoff {
		return errors.New("outbox relay: MinBackoff > MaxBackoff")
	}
	return nil
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
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Relay{pool: pool, pub: pub, cfg: cfg, log: log.With("component", "outbox-relay", "sink", cfg.Sink)}, nil
}

// RunOnce publishes at most one batch and deletes the acked rows. It
// returns how many rows left the outbox.
func (r *Relay) RunOnce(ctx context.Context) (int, error) {
	var acked int
	var pubErr error
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT id, topic, key, payload, created_at FROM outbox
			WHERE sink = $1::text ORDER BY id LIMIT $2 FOR UPDATE`, r.cfg.Sink, r.cfg.BatchSize)
		if err != nil {
			return err
		}
		msgs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Message, error) {
			m := Message{Sink: r.cfg.Sink}
			return m, row.Scan(&m.ID, &m.Topic, &m.Key, &m.Payload, &m.CreatedAt)
		})
		if err != nil || len(msgs) == 0 {
			return err
		}
		acked, pubErr = r.pub.Publish(ctx, msgs)
		if acked < 0 || acked > len(msgs) {
			return fmt.Errorf("publisher acked %d of %d", acked, len(msgs))
		}
		if acked == 0 {
			return nil
		}
		done := msgs[:acked]
		now := time.Now()
		ids := make([]int64, len(done))
		for i, m := range done {
			ids[i] = m.ID
			if r.cfg.Observe != nil {
				r.cfg.Observe(m, now)
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM outbox WHERE id = ANY($1)`, ids); err != nil {
			return err
		}
		if r.cfg.AfterPublish != nil {
			return r.cfg.AfterPublish(ctx, tx, done)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if pubErr != nil {
		return acked, fmt.Errorf("publish: %w", pubErr)
	}
	return acked, nil
}

// Drain publishes batches until the outbox of the sink is empty or an
// error occurs.
func (r *Relay) Drain(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := r.RunOnce(ctx)
		total += n
		if err != nil || n < r.cfg.BatchSize {
			return total, err
		}
	}
}

// Run relays until ctx is cancelled, then drains once more within
// FlushTimeout. It wakes on NOTIFY, polls as a fallback, and backs off
// exponentially while the broker fails.
func (r *Relay) Run(ctx context.Context) error {
	defer r.flush()
	backoff := time.Duration(0)
	var listener *pgxpool.Conn
	defer func() {
		if listener != nil {
			listener.Release()
		}
	}()
	for ctx.Err() == nil {
		if listener == nil {
			listener = r.listen(ctx) // before draining, so no NOTIFY is missed
		}
		if _, err := r.Drain(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			backoff = min(max(backoff*2, r.cfg.MinBackoff), r.cfg.MaxBackoff)
			r.log.Warn("outbox relay failed, retrying", "err", err, "backoff", backoff)
			if !sleep(ctx, backoff) {
				return nil
			}
			continue
		}
		backoff = 0
		if listener == nil {
			if !sleep(ctx, r.cfg.PollInterval) {
				return nil
			}
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, r.cfg.PollInterval)
		_, err := listener.Conn().WaitForNotification(wctx)
		cancel()
		if err != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
			r.log.Warn("outbox listener lost, falling back to polling", "err", err)
			listener.Conn().Close(context.Background()) //nolint:errcheck
			listener.Release()
			listener = nil
		}
	}
	return nil
}

func (r *Relay) listen(ctx context.Context) *pgxpool.Conn {
	c, err := r.pool.Acquire(ctx)
	if err != nil {
		return nil
	}
	if _, err := c.Exec(ctx, "LISTEN "+pgx.Identifier{Channel(r.cfg.Sink)}.Sanitize()); err != nil {
		c.Release()
		return nil
	}
	return c
}

func (r *Relay) flush() {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.FlushTimeout)
	defer cancel()
	n, err := r.Drain(ctx)
	if err != nil {
		r.log.Warn("outbox final flush incomplete; rows stay for the next start", "published", n, "err", err)
		return
	}
	r.log.Info("outbox flushed", "published", n)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
