// Package dedup keeps processed_messages (one row per message each
// idempotent consumer applied) from growing forever: a row is only needed
// while its message can come again, i.e. within the topic's retention.
package dedup

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Retention is how long a processed message is remembered: Kafka's
// default log retention (log.retention.hours=168), the longest a record
// can be redelivered, with a day to spare.
const Retention = 8 * 24 * time.Hour

// Prune deletes the rows processed before now-keep and returns how many.
func Prune(ctx context.Context, pool *pgxpool.Pool, keep time.Duration) (int64, error) {
	tag, err := pool.Exec(ctx, `DELETE FROM processed_messages WHERE processed_at < now() - $1::interval`, keep)
	return tag.RowsAffected(), err
}

// RunPruner prunes every interval until ctx ends; a failure is logged and
// tried again at the next tick.
func RunPruner(ctx context.Context, pool *pgxpool.Pool, every, keep time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := Prune(ctx, pool, keep); err != nil && ctx.Err() == nil {
			log.Warn("pruning processed_messages failed; next try in "+every.String(), "err", err)
		} else if n > 0 {
			log.Info("processed_messages pruned", "deleted", n, "older_than", keep.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
