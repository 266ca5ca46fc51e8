package eventstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"platform/internal/failpoint"
)

// Publisher sends messages to a broker in order. It returns how many
// leading messages the broker acknowledged. An error that wraps ErrRefused
// says the broker refused the message after the acked ones for good (too
// large, not authorised): the relay records it in relay_dead_letters and
// moves past it, so it never holds back the events behind it.
type Publisher interface {
	Publish(ctx context.Context, msgs []Message) (acked int, err error)
}

// RelayConfig of a Relay. Zero values take the defaults.
type RelayConfig struct {
	Sink           string        // names the relay's cursor and leader lock, default "kafka"
	BatchSize      int           // events per publish, default 1000
	PollInterval   time.Duration // how often a relay looks without a wake-up, default 500ms
	PublishTimeout time.Duration // deadline of one publish, default 30s
	MinBackoff     time.Duration // after a failure, default 100ms
	MaxBackoff     time.Duration // default 10s
	FlushTimeout   time.Duration // final drain on shutdown, default 5s
	// Wake, when it fires, makes the relay look at once (Store.Published).
	Wake <-chan struct{}
	// Observe, if set, sees every acked message with the time of the ack.
	Observe func(m Message, ackedAt time.Time)
}

func (c *RelayConfig) setDefaults() {
	if c.Sink == "" {
		c.Sink = "kafka"
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 500 * time.Millisecond
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 30 * time.Second
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
func (c RelayConfig) Validate() error {
	if c.MinBackoff > c.MaxBackoff {
		return errors.New("event relay: MinBackoff > MaxBackoff")
	}
	return nil
}

// cursor is the position of the last published event: (transaction id, seq).
type cursor struct {
	tx  uint64
	seq int64
}

// Relay publishes the events that have a topic, in (transaction, seq)
// order, following a cursor. One relay per sink leads (a session advisory
// lock); the others wait. It reads only events of transactions older than
// every transaction still running (pg_snapshot_xmin), so a transaction that
// commits late with a lower seq is never skipped; it publishes outside any
// transaction, then moves the cursor with a compare-and-set. A crash between
// the broker's ack and the cursor's move publishes a batch again: consumers
// apply an event_id once.
type Relay struct {
	pool *pgxpool.Pool
	pub  Publisher
	cfg  RelayConfig
	log  *slog.Logger

	conn *pgxpool.Conn // held while leading: the advisory lock lives on it
	at   cursor
}

// NewRelay checks cfg and returns a relay.
func NewRelay(pool *pgxpool.Pool, pub Publisher, cfg RelayConfig, log *slog.Logger) (*Relay, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Relay{pool: pool, pub: pub, cfg: cfg, log: log.With("component", "event-relay", "sink", cfg.Sink)}, nil
}

// Run relays until ctx ends, then drains once more within FlushTimeout.
func (r *Relay) Run(ctx context.Context) error {
	defer r.resign()
	defer r.flush()
	backoff := time.Duration(0)
	held := time.Duration(0)
	for ctx.Err() == nil {
		if r.conn == nil {
			led, err := r.lead(ctx)
			if err != nil && ctx.Err() == nil {
				r.log.Warn("event relay cannot reach PostgreSQL, retrying", "err", err)
			}
			if !led {
				r.wait(ctx, r.cfg.PollInterval)
				continue
			}
		}
		n, err := r.step(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			backoff = min(max(backoff*2, r.cfg.MinBackoff), r.cfg.MaxBackoff)
			r.log.Warn("event relay failed, retrying", "err", err, "backoff", backoff)
			r.resign() // a lost connection lost the lock too; lead again after the pause
			if !sleep(ctx, backoff) {
				return nil
			}
			continue
		}
		backoff = 0
		if n == r.cfg.BatchSize {
			continue
		}
		// Committed events wait behind an older transaction still running
		// (any write anywhere in the cluster): look again soon rather than
		// at the next poll, since that transaction's end wakes nobody.
		if waiting, err := r.heldBack(ctx); err == nil && waiting {
			if n > 0 {
				held = 0 // progress: the horizon moves, look again at once
			}
			held = min(max(held*2, time.Millisecond), r.cfg.PollInterval)
			sleep(ctx, held)
			continue
		}
		held = 0
		r.wait(ctx, r.cfg.PollInterval)
	}
	return nil
}

// heldBack reports committed events past the cursor that the relay may not
// read yet because an older transaction is still running.
func (r *Relay) heldBack(ctx context.Context) (bool, error) {
	var waiting bool
	err := r.conn.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM events
		               WHERE topic IS NOT NULL AND tx >= pg_snapshot_xmin(pg_current_snapshot()))`).Scan(&waiting)
	return waiting, err
}

// ErrRefused marks a publish error as permanent for that message.
var ErrRefused = errors.New("refused by the broker")

// ErrNotLeader: another relay of the sink leads; this one publishes nothing.
var ErrNotLeader = errors.New("another relay of this sink leads")

// Close gives up leadership (Run does so itself when it returns).
func (r *Relay) Close() { r.resign() }

// lead tries to become the sink's leader and loads its cursor.
func (r *Relay) lead(ctx context.Context) (bool, error) {
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return false, err
	}
	var got bool
	err = conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(`+leaderKey+`)`, r.cfg.Sink).Scan(&got)
	if err != nil || !got {
		conn.Release()
		return false, err
	}
	var tx string
	_, err = conn.Exec(ctx, `INSERT INTO relay_cursors (sink) VALUES ($1) ON CONFLICT (sink) DO NOTHING`, r.cfg.Sink)
	if err == nil {
		err = conn.QueryRow(ctx, `SELECT tx::text, seq FROM relay_cursors WHERE sink = $1`, r.cfg.Sink).Scan(&tx, &r.at.seq)
	}
	if err == nil {
		r.at.tx, err = strconv.ParseUint(tx, 10, 64)
	}
	if err != nil {
		conn.Conn().Close(context.Background()) //nolint:errcheck // drops the lock with the session
		conn.Release()
		return false, fmt.Errorf("load cursor: %w", err)
	}
	r.conn = conn
	r.log.Info("event relay leads", "cursor_tx", r.at.tx, "cursor_seq", r.at.seq)
	return true, nil
}

// leaderKey is the session advisory lock of a sink's leader ($1 = sink).
const leaderKey = `hashtextextended('platform-event-relay:' || $1::text, 0)`

// resign gives up leadership at once: it unlocks, so the next relay can
// lead without waiting for this session to end; a session that cannot
// unlock is closed, which drops the lock with it.
func (r *Relay) resign() {
	if r.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := r.conn.Exec(ctx, `SELECT pg_advisory_unlock(`+leaderKey+`)`, r.cfg.Sink); err != nil {
		r.conn.Conn().Close(ctx) //nolint:errcheck
	}
	r.conn.Release()
	r.conn = nil
}

// step publishes at most one batch and moves the cursor past what the
// broker acked. It returns how many events it published. Only the leader
// steps.
func (r *Relay) step(ctx context.Context) (int, error) {
	msgs, last, err := r.next(ctx)
	if err != nil || len(msgs) == 0 {
		return 0, err
	}
	pctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	acked, pubErr := r.pub.Publish(pctx, msgs)
	cancel()
	if acked < 0 || acked > len(msgs) {
		return 0, fmt.Errorf("publisher acked %d of %d", acked, len(msgs))
	}
	if acked > 0 {
		now := time.Now()
		if r.cfg.Observe != nil {
			for _, m := range msgs[:acked] {
				r.cfg.Observe(m, now)
			}
		}
		failpoint.Hit("outbox-after-publish") // acked, cursor not yet moved: the fault tests' kill
		if err := r.advance(ctx, last[acked-1]); err != nil {
			return 0, err
		}
	}
	if errors.Is(pubErr, ErrRefused) && acked < len(msgs) {
		if err := r.deadLetter(ctx, msgs[acked], last[acked], pubErr); err != nil {
			return acked, err
		}
		return acked + 1, nil
	}
	if pubErr != nil {
		return acked, fmt.Errorf("publish: %w", pubErr)
	}
	return acked, nil
}

// next reads the batch after the cursor, with each message's position.
func (r *Relay) next(ctx context.Context) ([]Message, []cursor, error) {
	rows, err := r.conn.Query(ctx, `
		SELECT tx::text, seq, event_id, stream_id, version, type, topic, payload, recorded_at
		FROM events
		WHERE topic IS NOT NULL
		  AND (tx, seq) > ($1::text::xid8, $2::bigint)
		  AND tx < pg_snapshot_xmin(pg_current_snapshot())
		ORDER BY tx, seq
		LIMIT $3`, strconv.FormatUint(r.at.tx, 10), r.at.seq, r.cfg.BatchSize)
	if err != nil {
		return nil, nil, fmt.Errorf("read events: %w", err)
	}
	var msgs []Message
	var at []cursor
	var (
		tx  string
		pos cursor
		e   Event
		id  [16]byte
	)
	_, err = pgx.ForEachRow(rows, []any{&tx, &pos.seq, &id, &e.StreamID, &e.Version, &e.Type, &e.Topic, &e.Payload, &e.RecordedAt}, func() error {
		var err error
		if pos.tx, err = strconv.ParseUint(tx, 10, 64); err != nil {
			return err
		}
		e.EventID = id
		msgs = append(msgs, Message{EventID: e.EventID, Topic: e.Topic, Key: e.StreamID, Value: Envelope(make([]byte, 0, 128+len(e.Payload)), e), RecordedAt: e.RecordedAt})
		at = append(at, pos)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read events: %w", err)
	}
	return msgs, at, nil
}

// advance moves the cursor with a compare-and-set: a cursor that moved
// under us means another relay leads, and this one steps down.
func (r *Relay) advance(ctx context.Context, to cursor) error {
	if err := r.advanceIn(ctx, r.conn, to); err != nil {
		return err
	}
	r.at = to
	return nil
}

func (r *Relay) advanceIn(ctx context.Context, db interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, to cursor) error {
	tag, err := db.Exec(ctx, `
		UPDATE relay_cursors SET tx = $2::text::xid8, seq = $3, updated_at = now()
		WHERE sink = $1 AND tx = $4::text::xid8 AND seq = $5`,
		r.cfg.Sink, strconv.FormatUint(to.tx, 10), to.seq, strconv.FormatUint(r.at.tx, 10), r.at.seq)
	if err != nil {
		return fmt.Errorf("advance cursor: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return errors.New("advance cursor: another relay moved it; stepping down")
	}
	return nil
}

// deadLetter records an event the broker refused for good and moves the
// cursor past it, in one transaction.
func (r *Relay) deadLetter(ctx context.Context, m Message, at cursor, cause error) error {
	err := pgx.BeginFunc(ctx, r.conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO relay_dead_letters (sink, event_id, topic, error) VALUES ($1, $2, $3, $4)
			ON CONFLICT DO NOTHING`, r.cfg.Sink, [16]byte(m.EventID), m.Topic, cause.Error()); err != nil {
			return err
		}
		return r.advanceIn(ctx, tx, at)
	})
	if err != nil {
		return fmt.Errorf("dead-letter event %s: %w", m.EventID, err)
	}
	r.at = at
	r.log.Warn("event refused by the broker; recorded in relay_dead_letters and skipped",
		"event_id", m.EventID, "topic", m.Topic, "key", m.Key, "err", cause)
	return nil
}

// Drain publishes batches until fewer than a batch remain or an error
// occurs, leading first if it does not yet (ErrNotLeader when another
// relay leads).
func (r *Relay) Drain(ctx context.Context) (int, error) {
	if r.conn == nil {
		led, err := r.lead(ctx)
		if err != nil {
			return 0, err
		}
		if !led {
			return 0, ErrNotLeader
		}
	}
	total := 0
	for {
		n, err := r.step(ctx)
		total += n
		if err != nil || n < r.cfg.BatchSize {
			return total, err
		}
	}
}

func (r *Relay) flush() {
	if r.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.FlushTimeout)
	defer cancel()
	n, err := r.Drain(ctx)
	if err != nil {
		r.log.Warn("event relay final flush incomplete; the cursor keeps the rest for the next start", "published", n, "err", err)
		return
	}
	r.log.Info("event relay flushed", "published", n)
}

// wait returns after d, on a wake-up, or when ctx ends.
func (r *Relay) wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-r.cfg.Wake:
	}
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
