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
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"platform/internal/config"
	"platform/internal/migrations"
	"platform/internal/postgres"
	"platform/internal/restore"
	"platform/internal/tracing"
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
	traces, err := tracing.New(tracing.Config{ExportURL: cfg.TraceExportURL, SampleRatio: cfg.TraceSampleRatio})
	if err != nil {
		return fmt.Errorf("tracing: %w (check TRACE_EXPORT_URL)", err)
	}
	defer stopTracing(traces, log)
	a, err := newApplication(cfg, infra, traces, log)
	if err != nil {
		return err
	}
	defer a.close()
	return run(ctx, cfg.ShutdownTimeout, lns, a, log)
}

// stopTracing sends the spans still queued, for at most 2 s: a viewer
// that is down does not hold up the exit.
func stopTracing(t *tracing.Tracing, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := t.Shutdown(ctx); err != nil {
		log.Warn("spans not exported at shutdown", "err", err)
	}
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

// AfterRestore makes the event relay and the consumer groups agree with a
// database just restored from a snapshot (package restore); the apps must
// be stopped. The snapshot's schema is migrated first.
func AfterRestore(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	pool, err := postgres.Connect(ctx, cfg.PostgresDSN(), 2)
	if err != nil {
		return fmt.Errorf("%w; start it with `inv up postgres`", err)
	}
	defer pool.Close()
	if _, err := migrations.Apply(ctx, pool, log); err != nil {
		return err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.KafkaBroker()), kgo.ClientID("platform-after-restore"))
	if err != nil {
		return err
	}
	defer cl.Close()
	done, err := restore.Run(ctx, pool, kadm.NewClient(cl), restore.Config{
		TopicTelemetry: cfg.TopicTelemetry,
		TopicAnomalies: cfg.TopicAnomalies,
		Groups: map[string]string{
			cfg.QueryConsumerGroup:   cfg.TopicTelemetry,
			cfg.AnomalyConsumerGroup: cfg.TopicTelemetry,
			cfg.ActionsConsumerGroup: cfg.TopicAnomalies,
		},
		Rules: cfg.AnomalyCommandRules,
	})
	if err != nil {
		return fmt.Errorf("after restore: %w", err)
	}
	log.Info("relay and consumers follow the restored database",
		"republished", done.Republished, "consumer_groups_moved", done.Groups)
	return nil
}
