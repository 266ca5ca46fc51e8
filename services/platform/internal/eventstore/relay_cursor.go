package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// cursor is the position of the last published event: (transaction id, seq).
type cursor struct {
	tx  uint64
	seq int64
}

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

// heldBack reports committed events past the cursor that the relay may not
// read yet because an older transaction is still running.
func (r *Relay) heldBack(ctx context.Context) (bool, error) {
	var waiting bool
	err := r.conn.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM events
		               WHERE topic IS NOT NULL AND tx >= pg_snapshot_xmin(pg_current_snapshot()))`).Scan(&waiting)
	return waiting, err
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
