// Package postgres opens the pgx pool shared by the three servers.
package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// connectTimeout bounds a connection attempt the server does not answer
// (stalled, or its packets dropped), so that it gives its pool slot back.
const connectTimeout = 5 * time.Second

// Connect opens a pool and pings it within 5 s.
func Connect(ctx context.Context, dsn string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres config: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "platform"
	// pgx prepares and caches statements. With the default plan cache mode
	// PostgreSQL may settle on a generic plan chosen while a table was still
	// empty (a sequential scan for the event_id duplicate check, say) and
	// keep it while the table grows. Custom plans cost a little planning and
	// always see the current table size and the actual parameters.
	cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres unreachable at %s:%d as %s: %s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.User, lastLine(err))
	}
	return pool, nil
}

// lastLine keeps the most specific line of a multi-line pgx connect error
// (one line per host and TLS attempt), so that it fits one log line.
func lastLine(err error) string {
	lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
