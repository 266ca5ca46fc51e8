// Package testdb gives each component-test package its own freshly
// migrated PostgreSQL database, reached through the POSTGRES_* settings,
// and drops it afterwards. It never mocks the driver: no PostgreSQL, no test.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"platform/internal/config"
	"platform/internal/eventstore"
	"platform/internal/migrations"
	"platform/internal/postgres"
)

// DB is a throwaway database.
type DB struct {
	Pool  *pgxpool.Pool
	Name  string
	DSN   string
	admin string
}

// Create makes a database named after prefix plus a random suffix,
// applies the migrations and returns it. The error is one line saying what
// address was tried and how to start PostgreSQL.
func Create(ctx context.Context, prefix string) (*DB, error) {
	return CreateAt(ctx, prefix, math.MaxInt)
}

// CreateAt is Create with the migrations applied up to version last.
func CreateAt(ctx context.Context, prefix string, last int) (*DB, error) {
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return nil, err
	}
	admin := cfg.PostgresDSN()
	where := fmt.Sprintf("%s:%d (user %s, db %s)", cfg.PostgresHost, cfg.PostgresPort, cfg.PostgresUser, cfg.PostgresDB)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, admin)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL unreachable at %s: %s; start it with `inv up postgres` or run `nox -s component`", where, oneLine(err))
	}
	defer conn.Close(ctx)
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := fmt.Sprintf("test_%s_%s", strings.ReplaceAll(prefix, "-", "_"), hex.EncodeToString(b[:]))
	if _, err := conn.Exec(cctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return nil, fmt.Errorf("create database %s at %s: %s (the role needs CREATEDB)", name, where, oneLine(err))
	}
	dsn := config.PostgresURL(cfg.PostgresHost, cfg.PostgresPort, cfg.PostgresUser, cfg.PostgresPassword, name)
	pool, err := postgres.Connect(ctx, dsn, 20)
	if err != nil {
		return nil, err
	}
	if _, err := migrations.ApplyUpTo(ctx, pool, slog.New(slog.NewTextHandler(io.Discard, nil)), last); err != nil {
		pool.Close()
		return nil, err
	}
	return &DB{Pool: pool, Name: name, DSN: dsn, admin: admin}, nil
}

// Close closes the pool and drops the database.
func (d *DB) Close() {
	d.Pool.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.admin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testdb: cannot drop %s: %v\n", d.Name, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{d.Name}.Sanitize()+" WITH (FORCE)"); err != nil {
		fmt.Fprintf(os.Stderr, "testdb: cannot drop %s: %v\n", d.Name, err)
	}
}

// Truncate empties the given tables (between tests of one package).
func (d *DB) Truncate(ctx context.Context, tables ...string) error {
	_, err := d.Pool.Exec(ctx, "TRUNCATE "+strings.Join(tables, ", ")+" RESTART IDENTITY")
	return err
}

// Count is the number of rows of table; it fails t on an error.
func (d *DB) Count(t testing.TB, table string) int {
	t.Helper()
	var n int
	if err := d.Pool.QueryRow(context.Background(), "SELECT count(*) FROM "+pgx.Identifier{table}.Sanitize()).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// Settled waits until every transaction that wrote an event has ended,
// anywhere in the cluster. The event relay reads only events of
// transactions older than the oldest one still running (pg_snapshot_xmin),
// and the test packages share one PostgreSQL: a neighbour's CREATE DATABASE
// holds that horizon back for a moment.
func (d *DB) Settled(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var done bool
		err := d.Pool.QueryRow(ctx, `SELECT coalesce(max(tx) < pg_snapshot_xmin(pg_current_snapshot()), true) FROM events`).Scan(&done)
		if err != nil || done {
			return err
		}
		if time.Now().After(deadline) {
			return errors.New("a transaction older than the newest event is still running after 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Published is what the event relay sends to the broker, from the first
// event on: every event with a topic, in relay order. It settles first and
// replays from an empty cursor, so it may be called any number of times.
func (d *DB) Published(ctx context.Context) ([]eventstore.Message, error) {
	if err := d.Truncate(ctx, "relay_cursors"); err != nil {
		return nil, err
	}
	if err := d.Settled(ctx); err != nil {
		return nil, err
	}
	rec := &recorder{}
	relay, err := eventstore.NewRelay(d.Pool, rec, eventstore.RelayConfig{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return nil, err
	}
	defer relay.Close()
	_, err = relay.Drain(ctx)
	return rec.got, err
}

// recorder is the broker for Published.
type recorder struct{ got []eventstore.Message }

func (r *recorder) Publish(_ context.Context, msgs []eventstore.Message) (int, error) {
	r.got = append(r.got, msgs...)
	return len(msgs), nil
}

// Main is a TestMain body: it creates the database, runs the tests, drops
// it, and exits 1 with one line when PostgreSQL is unreachable.
func Main(run func(db *DB) int, prefix string) int {
	db, err := Create(context.Background(), prefix)
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: "+err.Error())
		return 1
	}
	defer db.Close()
	return run(db)
}

// Run is the TestMain of a package whose tests need only the database: it
// points *db at a fresh one (Main), runs the tests and exits with their code.
func Run(m *testing.M, prefix string, db **DB) {
	os.Exit(Main(func(d *DB) int { *db = d; return m.Run() }, prefix))
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
