package relay

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Lease is the leadership of one sink across processes: a session advisory
// lock on a connection of its own. Release unlocks, so the next relay can
// lead at once, then closes that connection, which ends the session and any
// LISTEN on it (and the lock too, when the unlock could not be sent).
type Lease struct {
	pool *pgxpool.Pool
	name string
	conn *pgxpool.Conn
}

// lockKey is the advisory lock of a lease ($1 = its name): the one-bigint
// form, a key space apart from the event store's stream locks (two ints).
const lockKey = `hashtextextended($1::text, 0)`

// NewLease is the lease called name ("platform-event-relay:kafka"): the
// lock's key is the name's hash.
func NewLease(pool *pgxpool.Pool, name string) *Lease { return &Lease{pool: pool, name: name} }

// Acquire takes the lock if no session holds it and returns the connection
// that holds it, or nil when another session does.
func (l *Lease) Acquire(ctx context.Context) (*pgxpool.Conn, error) {
	c, err := l.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	var got bool
	if err := c.QueryRow(ctx, `SELECT pg_try_advisory_lock(`+lockKey+`)`, l.name).Scan(&got); err != nil || !got {
		c.Release()
		return nil, SQLError(err)
	}
	l.conn = c
	return c, nil
}

// Release gives the lock up at once (a no-op when not held).
func (l *Lease) Release() {
	if l.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, _ = l.conn.Exec(ctx, `SELECT pg_advisory_unlock(`+lockKey+`)`, l.name)
	l.conn.Conn().Close(ctx) //nolint:errcheck // the session ends with the socket either way
	l.conn.Release()
	l.conn = nil
}

// SQLError marks an error of PostgreSQL's class 42 (an undefined table or
// column, a syntax error, a missing privilege: a database this build does
// not fit) as Permanent; it returns any other error as it is.
func SQLError(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && strings.HasPrefix(pe.Code, "42") {
		return Permanent(err)
	}
	return err
}
