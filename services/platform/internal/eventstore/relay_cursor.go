package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"platform/internal/relay"
)

// cursor is the position of the last published event: (transaction id, seq).
type cursor struct {
	tx  uint64
	seq int64
}

// loadCursor reads the sink's cursor, creating it at the start.
func loadCursor(ctx context.Context, conn interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
	QueryRow(context.Context, string, ...any) pgx.Row
}, sink string) (cursor, error) {
	var at cursor
	var tx string
	_, err := conn.Exec(ctx, `INSERT INTO relay_cursors (sink) VALUES ($1) ON CONFLICT (sink) DO NOTHING`, sink)
	if err == nil {
		err = conn.QueryRow(ctx, `SELECT tx::text, seq FROM relay_cursors WHERE sink = $1`, sink).Scan(&tx, &at.seq)
	}
	if err == nil {
		at.tx, err = strconv.ParseUint(tx, 10, 64)
	}
	return at, err
}

// heldBack reports committed events past the cursor that the relay may not
// read yet because an older transaction is still running.
func (s *cursorSteps) heldBack(ctx context.Context) (bool, error) {
	var waiting bool
	err := s.conn.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM events
		               WHERE topic IS NOT NULL AND tx >= pg_snapshot_xmin(pg_current_snapshot()))`).Scan(&waiting)
	return waiting, err
}

// advanceIn moves the cursor with a compare-and-set: a cursor that moved
// under us means another relay leads, and this one steps down.
func (s *cursorSteps) advanceIn(ctx context.Context, db interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, to cursor) error {
	tag, err := db.Exec(ctx, `
		UPDATE relay_cursors SET tx = $2::text::xid8, seq = $3, updated_at = now()
		WHERE sink = $1 AND tx = $4::text::xid8 AND seq = $5`,
		s.cfg.Sink, strconv.FormatUint(to.tx, 10), to.seq, strconv.FormatUint(s.at.tx, 10), s.at.seq)
	if err != nil {
		return fmt.Errorf("advance cursor: %w", relay.SQLError(err))
	}
	if tag.RowsAffected() != 1 {
		return errors.New("advance cursor: another relay moved it; stepping down")
	}
	return nil
}

// Skip records an event the broker refused for good and moves the cursor
// past it, in one transaction.
func (s *cursorSteps) Skip(ctx context.Context, m Message, cause error) error {
	err := pgx.BeginFunc(ctx, s.conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO relay_dead_letters (sink, event_id, topic, error) VALUES ($1, $2, $3, $4)
			ON CONFLICT DO NOTHING`, s.cfg.Sink, [16]byte(m.EventID), m.Topic, cause.Error()); err != nil {
			return err
		}
		return s.advanceIn(ctx, tx, m.at)
	})
	if err != nil {
		return fmt.Errorf("dead-letter event %s: %w", m.EventID, relay.SQLError(err))
	}
	s.at = m.at
	s.held = 0
	s.log.Warn("event refused by the broker; recorded in relay_dead_letters and skipped",
		"event_id", m.EventID, "topic", m.Topic, "key", m.Key, "err", cause)
	return nil
}
