package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"platform/internal/config"
	"platform/internal/kafkax"
	"platform/internal/migrations"
	"platform/internal/postgres"
)

// infrastructure is what the servers share: one PostgreSQL pool (migrated:
// the one place migrations run on start) and one Kafka producer.
type infrastructure struct {
	pool       *pgxpool.Pool
	producer   *kgo.Client
	brokers    []string
	stopTopics context.CancelFunc
}

func connect(ctx context.Context, cfg config.Config, log *slog.Logger) (*infrastructure, error) {
	pool, err := postgres.Connect(ctx, cfg.PostgresDSN(), 40)
	if err != nil {
		return nil, fmt.Errorf("%w; start it with `inv up postgres`", err)
	}
	if _, err := migrations.Apply(ctx, pool, log); err != nil {
		pool.Close()
		return nil, err
	}
	brokers := []string{cfg.KafkaBroker()}
	producer, err := kafkax.NewProducer(brokers, 30*time.Second)
	if err != nil {
		pool.Close()
		return nil, err
	}
	// Topics are created in the background: a broker that starts after the
	// app is waited for without holding up the HTTP servers.
	topics, stopTopics := context.WithCancel(context.Background())
	go kafkax.EnsureTopicsRetry(topics, producer, int32(cfg.KafkaPartitions), log,
		cfg.TopicTelemetry, cfg.TopicTelemetryDLQ, cfg.TopicAnomalies,
		kafkax.DLQTopic(cfg.TopicTelemetry), kafkax.DLQTopic(cfg.TopicAnomalies))
	return &infrastructure{pool: pool, producer: producer, brokers: brokers, stopTopics: stopTopics}, nil
}

// flush waits briefly for records the producer still holds.
func (in *infrastructure) flush() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = in.producer.Flush(ctx)
}

func (in *infrastructure) close() {
	in.stopTopics()
	in.producer.Close()
	in.pool.Close()
}

func (in *infrastructure) pingPostgres(ctx context.Context) error { return in.pool.Ping(ctx) }

func (in *infrastructure) pingKafka(ctx context.Context) error { return kafkax.Ping(ctx, in.producer) }
