package eventstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"platform/internal/failpoint"
	"platform/internal/pause"
	"platform/internal/relaytiming"
)

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
				pause.Until(ctx, r.cfg.PollInterval, r.cfg.Wake)
				continue
			}
		}
		n, err := r.step(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			backoff = r.cfg.Backoff(backoff)
			r.log.Warn("event relay failed, retrying", "err", err, "backoff", backoff)
			r.resign() // a lost connection lost the lock too; lead again after the pause
			if !pause.For(ctx, backoff) {
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
			held = pause.Backoff{Min: time.Millisecond, Max: r.cfg.PollInterval}.Next(held)
			pause.For(ctx, held)
			continue
		}
		held = 0
		pause.Until(ctx, r.cfg.PollInterval, r.cfg.Wake)
	}
	return nil
}

// Close gives up leadership (Run does so itself when it returns).
func (r *Relay) Close() { r.resign() }

// step publishes at most one batch and moves the cursor past what the
// broker acked. It returns how many events it published. Only the leader
// steps.
func (r *Relay) step(ctx context.Context) (int, error) {
	msgs, last, err := r.next(ctx)
	if err != nil || len(msgs) == 0 {
		return 0, err
	}
	acked, pubErr := relaytiming.Publish(ctx, r.cfg.Timing, msgs, r.pub.Publish)
	if acked > 0 {
		now := time.Now()
		if r.cfg.Observe != nil {
			for _, m := range msgs[:acked] {
				r.cfg.Observe(m, now)
			}
		}
		failpoint.Hit("event-relay-after-publish") // acked, cursor not yet moved: the fault tests' kill
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
// ORDER BY names events.tx: a bare "tx" would sort by the text output
// column, and "1000" < "999" (a batch across a power of ten published out
// of order, then the cursor past events not yet sent).
func (r *Relay) next(ctx context.Context) ([]Message, []cursor, error) {
	rows, err := r.conn.Query(ctx, `
		SELECT tx::text, seq, event_id, stream_id, version, type, topic, payload, recorded_at
		FROM events
		WHERE topic IS NOT NULL
		  AND (tx, seq) > ($1::text::xid8, $2::bigint)
		  AND tx < pg_snapshot_xmin(pg_current_snapshot())
		ORDER BY events.tx, events.seq
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
	r.cfg.Flush(r.Drain, r.log, "event relay", "the cursor keeps the rest for the next start")
}
