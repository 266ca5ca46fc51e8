// Package restore makes the event relay and the Kafka consumers agree with
// a database that `inv db.restore` has just replaced with a snapshot
// (`platform after-restore`; the apps are stopped).
//
// The bus still holds every record published before the restore, and each
// consumer group's offsets point past what it consumed. A record's event is
// either in the snapshot or gone with what came after it, and the snapshot
// may lack some effects of its own events: those the relay had not
// published yet when it was taken, and those published but not yet applied
// by every consumer of their topic (a consumer that lagged). So:
//
//   - every consumer group moves to the end of its topic: nothing published
//     before the restore is consumed again;
//   - the relay republishes exactly the snapshot's events whose effects it
//     may lack, in their order; each consumer applies an event id once
//     (processed_messages, restored with the snapshot; anomaly and command
//     ids derived from the event's), so what it already applied is a no-op;
//   - the restored transaction ids are renumbered below those the cluster
//     hands out next: a snapshot from another cluster (after `inv clean`,
//     or the other backend) may carry higher ones, which the relay would
//     take for transactions still running, and place new events behind.
package restore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"platform/actions"
	"platform/detector"
	"platform/query"
)

// Config names the topics, the consumer groups and the anomaly rules.
type Config struct {
	TopicTelemetry string
	TopicAnomalies string
	Groups         map[string]string // consumer group -> the topic it consumes
	Rules          map[string]string // metric -> command: anomalies without a rule issue none
}

// Result says what was done.
type Result struct {
	Republished int64 // events the relay publishes again
	Groups      int   // consumer groups moved to the end of their topic
}

// published is the relay cursor's transaction id after a restore, which
// every event already applied carries: PostgreSQL's first normal
// transaction id, below every one it hands out.
const published = 3

// Run does both steps: the database's first, then the consumer groups'.
func Run(ctx context.Context, pool *pgxpool.Pool, adm *kadm.Client, cfg Config) (Result, error) {
	if err := groupsIdle(ctx, adm, cfg.Groups); err != nil {
		return Result{}, err
	}
	n, err := Relay(ctx, pool, cfg)
	if err != nil {
		return Result{}, err
	}
	moved, err := Consumers(ctx, adm, cfg.Groups)
	return Result{Republished: n, Groups: moved}, err
}

// Relay rewrites the event relay's cursor and the events' transaction ids
// so that the relay publishes again the events whose effects the database
// may lack, and returns how many.
func Relay(ctx context.Context, pool *pgxpool.Pool, cfg Config) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		missing, err := commandsMissing(ctx, tx, cfg)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			CREATE TEMP TABLE republish (event_id uuid PRIMARY KEY, tx xid8 NOT NULL) ON COMMIT DROP`); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `
			INSERT INTO republish
			SELECT e.event_id, e.tx FROM events e
			LEFT JOIN relay_cursors c ON c.sink = 'kafka'
			WHERE e.topic IS NOT NULL AND (
			      (e.tx, e.seq) > (coalesce(c.tx, '0'::xid8), coalesce(c.seq, 0))
			   OR (e.topic = $1 AND EXISTS (
			          SELECT 1 FROM unnest($2::text[]) AS want(name) WHERE NOT EXISTS (
			              SELECT 1 FROM processed_messages p
			              WHERE p.consumer = want.name AND p.message_id = e.event_id::text)))
			   OR e.event_id = ANY($3::uuid[]))`,
			cfg.TopicTelemetry, []string{query.ConsumerName, detector.ConsumerName}, missing)
		if err != nil {
			return fmt.Errorf("find the events to publish again: %w", err)
		}
		n = tag.RowsAffected()
		// Kept while these come again: the pruner drops rows by age, and a
		// restored row may be older than its retention.
		if _, err := tx.Exec(ctx, `
			UPDATE processed_messages SET processed_at = now()
			WHERE message_id IN (SELECT event_id::text FROM republish)`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			UPDATE events e SET tx = $1::text::xid8
			WHERE e.topic IS NOT NULL AND e.tx <> $1::text::xid8
			  AND NOT EXISTS (SELECT 1 FROM republish r WHERE r.event_id = e.event_id)`,
			strconv.Itoa(published)); err != nil {
			return fmt.Errorf("renumber the published events: %w", err)
		}
		if _, err := tx.Exec(ctx, `
			UPDATE events e SET tx = ($1 + r.rank)::text::xid8
			FROM (SELECT event_id, dense_rank() OVER (ORDER BY tx) AS rank FROM republish) r
			WHERE e.event_id = r.event_id`, published); err != nil {
			return fmt.Errorf("renumber the events to publish again: %w", err)
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO relay_cursors (sink, tx, seq) VALUES ('kafka', $1::text::xid8, $2)
			ON CONFLICT (sink) DO UPDATE SET tx = EXCLUDED.tx, seq = EXCLUDED.seq, updated_at = now()`,
			strconv.Itoa(published), int64(math.MaxInt64))
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, passTransactionIDs(ctx, pool, published+n)
}

// commandsMissing returns the anomaly events the snapshot holds whose rule
// issues a command that the snapshot does not hold.
func commandsMissing(ctx context.Context, tx pgx.Tx, cfg Config) ([]uuid.UUID, error) {
	metrics := make([]string, 0, len(cfg.Rules))
	for metric := range cfg.Rules {
		metrics = append(metrics, metric)
	}
	rows, err := tx.Query(ctx, `
		SELECT event_id FROM events
		WHERE topic = $1 AND convert_from(payload, 'UTF8')::jsonb ->> 'metric' = ANY($2::text[])`,
		cfg.TopicAnomalies, metrics)
	if err != nil {
		return nil, fmt.Errorf("read the anomaly events: %w", err)
	}
	anomalies, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("read the anomaly events: %w", err)
	}
	commands := make([]uuid.UUID, len(anomalies))
	for i, id := range anomalies {
		commands[i] = actions.CommandIDFor(id)
	}
	rows, err = tx.Query(ctx, `
		SELECT t.anomaly FROM unnest($1::uuid[], $2::uuid[]) AS t(anomaly, command)
		WHERE NOT EXISTS (SELECT 1 FROM commands c WHERE c.command_id = t.command)`, anomalies, commands)
	if err != nil {
		return nil, fmt.Errorf("read the commands: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
}

// passTransactionIDs makes the cluster hand out ids above last, so that the
// renumbered events count as finished and new ones come after them. A
// cluster younger than the snapshot's count of transactions to republish
// needs that many empty ones.
func passTransactionIDs(ctx context.Context, pool *pgxpool.Pool, last int64) error {
	for {
		var next int64
		if err := pool.QueryRow(ctx, `SELECT pg_current_xact_id()::text::bigint`).Scan(&next); err != nil {
			return fmt.Errorf("read the next transaction id: %w", err)
		}
		if next > last {
			return nil
		}
	}
}

// groupsIdle refuses while a consumer group has members: its offsets can
// only be moved while no app consumes.
func groupsIdle(ctx context.Context, adm *kadm.Client, groups map[string]string) error {
	names := make([]string, 0, len(groups))
	for group := range groups {
		names = append(names, group)
	}
	slices.Sort(names)
	var described kadm.DescribedGroups
	err := whenReady(ctx, func() (err error) {
		if described, err = adm.DescribeGroups(ctx, names...); err != nil {
			return err
		}
		for _, g := range described {
			if g.Err != nil && !errors.Is(g.Err, kerr.GroupIDNotFound) { // never used: idle
				return g.Err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("describe the consumer groups: %w", err)
	}
	for _, g := range described.Sorted() {
		if len(g.Members) > 0 {
			return fmt.Errorf("consumer group %s has %d member(s): an app still consumes; stop it first", g.Group, len(g.Members))
		}
	}
	return nil
}

// brokerWait bounds how long a broker that has just started may answer
// that its group coordinator is not ready yet.
const brokerWait = 60 * time.Second

// whenReady calls fn until it succeeds, fails for good, or brokerWait passes.
func whenReady(ctx context.Context, fn func() error) error {
	deadline := time.Now().Add(brokerWait)
	for {
		err := fn()
		if err == nil || !kerr.IsRetriable(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Consumers commits, for every group, the end offset of each partition of
// its topic, and returns how many groups it moved (a topic that does not
// exist yet has nothing to skip).
func Consumers(ctx context.Context, adm *kadm.Client, groups map[string]string) (int, error) {
	moved := 0
	for group, topic := range groups {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return moved, fmt.Errorf("list the end offsets of %s: %w", topic, err)
		}
		offsets := kadm.Offsets{}
		var failed error
		ends.Each(func(o kadm.ListedOffset) {
			switch {
			case o.Err == nil:
				offsets.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: o.Offset, LeaderEpoch: -1})
			case !errors.Is(o.Err, kerr.UnknownTopicOrPartition):
				failed = o.Err
			}
		})
		if failed != nil {
			return moved, fmt.Errorf("list the end offsets of %s: %w", topic, failed)
		}
		if len(offsets) == 0 {
			continue
		}
		err = whenReady(ctx, func() error {
			resp, err := adm.CommitOffsets(ctx, group, offsets)
			if err == nil {
				err = resp.Error()
			}
			return err
		})
		if err != nil {
			return moved, fmt.Errorf("move consumer group %s to the end of %s: %w", group, topic, err)
		}
		moved++
	}
	return moved, nil
}
