// Package app assembles the monolith and shuts it down in order. The
// server packages build themselves from their dependencies (ingestion.New,
// query.New, actions.New, detector.New); this package only connects the
// infrastructure (infra.go), hands it to them (application.go) and runs the
// result (run.go).
package app

import (
	"context"
	"fmt"
	"log/slog"

	"platform/internal/config"
	"platform/internal/migrations"
	"platform/internal/postgres"
)

// Serve runs everything until ctx ends, then shuts down within
// cfg.ShutdownTimeout: servers drain, workers stop, MQTT and Kafka flush.
func Serve(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	// Bind first: a busy port is a clear, immediate error, before any connection.
	lns, err := listen(cfg)
	if err != nil {
		return err
	}
	defer lns.close()
	infra, err := connect(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer infra.close()
	a, err := newApplication(cfg, infra, log)
	if err != nil {
		return err
	}
	defer a.close()
	return run(ctx, cfg.ShutdownTimeout, lns, a, log)
}

// Migrate applies the embedded migrations and returns.
func Migrate(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	pool, err := postgres.Connect(ctx, cfg.PostgresDSN(), 2)
	if err != nil {
		return fmt.Errorf("%w; start it with `inv up postgres`", err)
	}
	defer pool.Close()
	applied, err := migrations.Apply(ctx, pool, log)
	if applied == nil {
		applied = []int{}
	}
	if err != nil {
		return err
	}
	log.Info("migrations up to date", "applied_now", applied)
	return nil
}
