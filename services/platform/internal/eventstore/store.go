package eventstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// streamLockSpace is the first key of the advisory locks that guard device
// streams (pg_advisory_xact_lock(int, int)); the second is the stream id's
// hash. Other advisory locks of the platform use the one-bigint form, a
// separate key space.
const streamLockSpace = 7270

// maxAttempts bounds the re-runs of a transaction that failed with a
// serialization failure or a deadlock.
const maxAttempts = 5

// Store writes events. It owns the write transaction so that the rule that
// keeps per-device order on Kafka lives in one place: every stream the
// transaction writes is locked before its first write.
type Store struct {
	pool      *pgxpool.Pool
	published chan struct{}
}

// New returns a store on pool.
func New(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool, published: make(chan struct{}, 1)}
}

// Published fires after a commit that appended events with a topic, so
// that the relay of this process publishes them at once (relays of other
// processes find them on their poll).
func (s *Store) Published() <-chan struct{} { return s.published }

// Tx is a write transaction whose device streams are locked.
type Tx struct {
	pgx.Tx
	// Now is the transaction's clock: the RecordedAt of events that do not
	// bring their own.
	Now       time.Time
	locked    map[string]bool
	published bool
}

// Write runs fn in a transaction that first locks streams (the device ids
// whose streams fn may append to). It re-runs the whole transaction after a
// serialization failure or a deadlock, so fn must only write through tx.
//
// Why the locks come first: the relay publishes in (transaction id, seq)
// order and a transaction gets its id at its first write. Advisory locks
// take no id, so a writer that waits for a stream gets its id after the
// stream's previous writer committed: per device, id order is commit order.
func (s *Store) Write(ctx context.Context, streams []string, fn func(tx *Tx) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		var published bool
		err = pgx.BeginFunc(ctx, s.pool, func(ptx pgx.Tx) error {
			if err := lockStreams(ctx, ptx, streams); err != nil {
				return err
			}
			tx := &Tx{Tx: ptx, Now: time.Now().UTC().Truncate(time.Microsecond), locked: make(map[string]bool, len(streams))}
			for _, s := range streams {
				tx.locked[s] = true
			}
			if err := fn(tx); err != nil {
				return err
			}
			published = tx.published
			return nil
		})
		if err == nil && published {
			select {
			case s.published <- struct{}{}:
			default:
			}
		}
		if err == nil || !retryable(err) || attempt == maxAttempts {
			return err
		}
	}
}

func lockStreams(ctx context.Context, tx pgx.Tx, streams []string) error {
	if len(streams) == 0 {
		return nil
	}
	// Key order, so that two writers of overlapping streams never deadlock;
	// hash collisions merely share a lock.
	_, err := tx.Exec(ctx, `
		SELECT pg_advisory_xact_lock($1, k)
		FROM (SELECT DISTINCT hashtext(s) AS k FROM unnest($2::text[]) AS t(s) ORDER BY k) AS keys`,
		streamLockSpace, streams)
	if err != nil {
		return fmt.Errorf("lock streams: %w", err)
	}
	return nil
}

// AppendNew appends the events whose ids are neither stored yet nor
// repeated earlier in events, like Append, and returns those it appended
// (in order, Version filled). It copies at once and looks for stored ids
// only when the copy hits one (a client's retry, another consumer's work):
// the common case pays one SAVEPOINT. On a hit it rolls back to the
// savepoint, drops the stored ids and copies the rest; a concurrent writer
// that commits one of them in between costs another round.
func (tx *Tx) AppendNew(ctx context.Context, events []Event) ([]Event, error) {
	seen := make(map[uuid.UUID]bool, len(events))
	fresh := make([]Event, 0, len(events))
	for _, e := range events {
		if !seen[e.EventID] {
			seen[e.EventID] = true
			fresh = append(fresh, e)
		}
	}
	published := tx.published
	for attempt := 1; ; attempt++ {
		if len(fresh) == 0 {
			return fresh, nil
		}
		if _, err := tx.Exec(ctx, `SAVEPOINT append_new`); err != nil {
			return nil, fmt.Errorf("append: %w", err)
		}
		err := tx.Append(ctx, fresh)
		if !errors.Is(err, ErrDuplicate) || attempt == maxAttempts {
			if err != nil {
				return nil, err
			}
			return fresh, nil
		}
		tx.published = published
		if _, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT append_new`); err != nil {
			return nil, fmt.Errorf("append: %w", err)
		}
		if fresh, err = tx.withoutStored(ctx, fresh); err != nil {
			return nil, err
		}
	}
}

// withoutStored drops the events whose ids are already stored.
func (tx *Tx) withoutStored(ctx context.Context, events []Event) ([]Event, error) {
	ids := make([]uuid.UUID, len(events))
	for i, e := range events {
		ids[i] = e.EventID
	}
	stored, err := tx.existing(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("stored event ids: %w", err)
	}
	fresh := make([]Event, 0, len(events))
	for _, e := range events {
		if !stored[e.EventID] {
			fresh = append(fresh, e)
		}
	}
	return fresh, nil
}

// existing returns the subset of ids already stored.
func (tx *Tx) existing(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]bool, error) {
	out := map[uuid.UUID]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	raw := make([][16]byte, len(ids))
	for i, id := range ids {
		raw[i] = id
	}
	rows, err := tx.Query(ctx, `SELECT event_id FROM events WHERE event_id = ANY($1)`, raw)
	if err != nil {
		return nil, err
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[[16]byte])
	for _, id := range found {
		out[uuid.UUID(id)] = true
	}
	return out, err
}

// Append gives each event the next version of its stream, in slice order,
// and writes them with COPY. Every stream must have been named to Write.
// An id that is already stored fails the transaction with ErrDuplicate;
// AppendNew skips such ids instead.
func (tx *Tx) Append(ctx context.Context, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	seen := map[string]bool{}
	ids := make([]string, 0, 8)
	for _, e := range events {
		if !tx.locked[e.StreamID] {
			return fmt.Errorf("append to stream %q: not locked by this transaction (name it to Store.Write)", e.StreamID)
		}
		if !seen[e.StreamID] {
			seen[e.StreamID] = true
			ids = append(ids, e.StreamID)
		}
	}
	// The stream locks are held, so the last versions cannot move under us;
	// this statement's snapshot, taken after the locks, sees them all.
	rows, err := tx.Query(ctx, `
		SELECT s, coalesce((SELECT max(version) FROM events WHERE stream_id = s), 0)
		FROM unnest($1::text[]) AS t(s)`, ids)
	if err != nil {
		return fmt.Errorf("stream versions: %w", err)
	}
	next := make(map[string]int64, len(ids))
	var id string
	var last int64
	_, err = pgx.ForEachRow(rows, []any{&id, &last}, func() error {
		next[id] = last + 1
		return nil
	})
	if err != nil {
		return fmt.Errorf("stream versions: %w", err)
	}
	for i := range events {
		e := &events[i]
		e.Version = next[e.StreamID]
		next[e.StreamID]++
		if e.RecordedAt.IsZero() {
			e.RecordedAt = tx.Now
		}
		tx.published = tx.published || e.Topic != ""
	}
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"events"},
		[]string{"event_id", "stream_id", "version", "type", "topic", "payload", "recorded_at", "trace_context"},
		pgx.CopyFromSlice(len(events), func(i int) ([]any, error) {
			e := &events[i]
			var topic, traceContext any
			if e.Topic != "" {
				topic = e.Topic
			}
			if e.TraceContext != "" {
				traceContext = e.TraceContext
			}
			return []any{[16]byte(e.EventID), e.StreamID, e.Version, e.Type, topic, e.Payload, e.RecordedAt, traceContext}, nil
		}))
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == "events_pkey" {
		return fmt.Errorf("copy events: %w", ErrDuplicate)
	}
	if err != nil {
		return fmt.Errorf("copy events: %w", err)
	}
	return nil
}

// retryable: serialization failures and deadlocks, after which the whole
// transaction may simply run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}
