package eventstore

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"platform/internal/pause"
	"platform/internal/relay"
)

// Relay publishes the events that have a topic, in (transaction, seq)
// order, following a cursor: the relay loop (package relay) on the steps
// below. One relay per sink leads (a session advisory lock); the others
// wait. It reads only events of transactions older than every transaction
// still running (pg_snapshot_xmin), so a transaction that commits late with
// a lower seq is never skipped; it publishes outside any transaction, then
// moves the cursor with a compare-and-set. A crash between the broker's ack
// and the cursor's move publishes a batch again: consumers apply an
// event_id once.
type Relay = relay.Loop[Message]

// Publisher sends messages to a broker in order. It returns how many
// leading messages the broker acknowledged. An error that wraps ErrRefused
// says the broker refused the message after the acked ones for good (too
// large, not authorised): the relay records it in relay_dead_letters and
// moves past it, so it never holds back the events behind it.
type Publisher = relay.Publisher[Message]

// ErrRefused marks a publish error as permanent for that message.
var ErrRefused = relay.ErrRefused

// ErrNotLeader: another relay of the sink leads; this one publishes nothing.
var ErrNotLeader = relay.ErrNotLeader

// RelayConfig of a Relay. Zero values take the defaults.
type RelayConfig struct {
	Sink string // names the relay's cursor and leader lock, default "kafka"
	relay.Timing
	// Wake, when it fires, makes the relay look at once (Store.Published).
	Wake <-chan struct{}
	// Observe, if set, sees every acked message with the time of the ack.
	Observe func(m Message, ackedAt time.Time)
}

// NewRelay checks cfg and returns a relay.
func NewRelay(pool *pgxpool.Pool, pub Publisher, cfg RelayConfig, log *slog.Logger) (*Relay, error) {
	if cfg.Sink == "" {
		cfg.Sink = "kafka"
	}
	log = log.With("sink", cfg.Sink)
	steps := &cursorSteps{lease: relay.NewLease(pool, "platform-event-relay:"+cfg.Sink), cfg: cfg, log: log}
	return relay.New("event-relay", steps, pub, cfg.Timing, log)
}

// cursorSteps are the event relay's steps: the cursor in relay_cursors is
// its position, read and moved on the connection that holds the lease.
type cursorSteps struct {
	lease *relay.Lease
	cfg   RelayConfig
	log   *slog.Logger

	conn *pgxpool.Conn // the lease's, while leading
	at   cursor
	held time.Duration // the pause while events wait behind an open transaction
}

// Lead takes the sink's lease and loads its cursor.
func (s *cursorSteps) Lead(ctx context.Context) (bool, error) {
	conn, err := s.lease.Acquire(ctx)
	if conn == nil {
		return false, err
	}
	if s.at, err = loadCursor(ctx, conn, s.cfg.Sink); err != nil {
		s.lease.Release()
		return false, fmt.Errorf("load cursor: %w", relay.SQLError(err))
	}
	s.conn = conn
	return true, nil
}

func (s *cursorSteps) Resign() {
	s.lease.Release()
	s.conn = nil
}

// Read reads the batch after the cursor, each message with its position.
// ORDER BY names events.tx: a bare "tx" would sort by the text output
// column, and "1000" < "999" (a batch across a power of ten published out
// of order, then the cursor past events not yet sent).
func (s *cursorSteps) Read(ctx context.Context, limit int) ([]Message, error) {
	rows, err := s.conn.Query(ctx, `
		SELECT tx::text, seq, event_id, stream_id, version, type, topic, payload, recorded_at, coalesce(trace_context, '')
		FROM events
		WHERE topic IS NOT NULL
		  AND (tx, seq) > ($1::text::xid8, $2::bigint)
		  AND tx < pg_snapshot_xmin(pg_current_snapshot())
		ORDER BY events.tx, events.seq
		LIMIT $3`, strconv.FormatUint(s.at.tx, 10), s.at.seq, limit)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", relay.SQLError(err))
	}
	var msgs []Message
	var (
		tx  string
		pos cursor
		e   Event
		id  [16]byte
	)
	_, err = pgx.ForEachRow(rows, []any{&tx, &pos.seq, &id, &e.StreamID, &e.Version, &e.Type, &e.Topic, &e.Payload, &e.RecordedAt, &e.TraceContext}, func() error {
		var err error
		if pos.tx, err = strconv.ParseUint(tx, 10, 64); err != nil {
			return err
		}
		e.EventID = id
		msgs = append(msgs, Message{EventID: e.EventID, Topic: e.Topic, Key: e.StreamID, Value: Envelope(make([]byte, 0, 128+len(e.Payload)), e), RecordedAt: e.RecordedAt, TraceContext: e.TraceContext, at: pos})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read events: %w", relay.SQLError(err))
	}
	return msgs, nil
}

// Advance moves the cursor past the acked events.
func (s *cursorSteps) Advance(ctx context.Context, acked []Message) error {
	if s.cfg.Observe != nil {
		now := time.Now()
		for _, m := range acked {
			s.cfg.Observe(m, now)
		}
	}
	if err := s.advanceIn(ctx, s.conn, acked[len(acked)-1].at); err != nil {
		return err
	}
	s.at = acked[len(acked)-1].at
	s.held = 0 // progress: the horizon moves, look again at once if held back
	return nil
}

// Wait: committed events held back by an older transaction still running
// (any write anywhere in the cluster) are looked for again soon, rather
// than at the next poll, since that transaction's end wakes nobody.
// Otherwise it waits for a commit of this process (Wake) or the poll.
func (s *cursorSteps) Wait(ctx context.Context, poll time.Duration) error {
	if waiting, err := s.heldBack(ctx); err == nil && waiting {
		s.held = pause.Backoff{Min: time.Millisecond, Max: poll}.Next(s.held)
		pause.For(ctx, s.held)
		return nil
	}
	s.held = 0
	pause.Until(ctx, poll, s.cfg.Wake)
	return nil
}
