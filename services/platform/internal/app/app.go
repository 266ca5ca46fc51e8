// Package app wires the monolith: one PostgreSQL pool, one Kafka producer,
// one MQTT session, the three HTTP servers, the event relay (Kafka) and the
// command relay (MQTT), the query consumer, the anomaly detector (query
// server; its /readyz checks the AI inference service) and the actions'
// anomalies.v1 consumer; and it shuts them down in order.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"platform/actions"
	"platform/detector"
	"platform/ingestion"
	"platform/internal/config"
	"platform/internal/contracts"
	"platform/internal/dedup"
	"platform/internal/eventstore"
	"platform/internal/httpx"
	"platform/internal/inference"
	"platform/internal/kafkax"
	"platform/internal/migrations"
	"platform/internal/mqttx"
	"platform/internal/outbox"
	"platform/internal/postgres"
	"platform/internal/relaytiming"
	"platform/query"
)

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

// dlq publishes MQTT intake's dead letters to the DLQ topic.
type dlq struct {
	cl    *kgo.Client
	topic string
}

func (d dlq) PublishDeadLetter(ctx context.Context, key string, dl ingestion.DeadLetter) error {
	return kafkax.PublishDeadLetter(ctx, d.cl, d.topic, []byte(key), dl)
}

// Serve runs everything until ctx ends, then shuts down within
// cfg.ShutdownTimeout.
func Serve(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	// Bind first: a busy port is a clear, immediate error.
	type srvDef struct {
		name string
		port int
	}
	defs := []srvDef{{"ingestion", cfg.IngestionPort}, {"query", cfg.QueryPort}, {"actions", cfg.ActionsPort}}
	lns := make([]net.Listener, len(defs))
	for i, d := range defs {
		ln, err := net.Listen("tcp", cfg.Addr(d.port))
		if err != nil {
			for _, l := range lns[:i] {
				l.Close()
			}
			return fmt.Errorf("%s server cannot listen on %s: %w (set %s_PORT to a free port)", d.name, cfg.Addr(d.port), err, upper(d.name))
		}
		lns[i] = ln
	}
	defer func() {
		for _, l := range lns {
			_ = l.Close() // already closed by Shutdown on the normal path
		}
	}()

	pool, err := postgres.Connect(ctx, cfg.PostgresDSN(), 40)
	if err != nil {
		return fmt.Errorf("%w; start it with `inv up postgres`", err)
	}
	defer pool.Close()
	if _, err := migrations.Apply(ctx, pool, log); err != nil {
		return err
	}
	val := contracts.Default()
	brokers := []string{cfg.KafkaBroker()}

	producer, err := kafkax.NewProducer(brokers, 30*time.Second)
	if err != nil {
		return err
	}
	defer producer.Close()
	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	go kafkax.EnsureTopicsRetry(bg, producer, int32(cfg.KafkaPartitions), log,
		cfg.TopicTelemetry, cfg.TopicTelemetryDLQ, cfg.TopicAnomalies,
		kafkax.DLQTopic(cfg.TopicTelemetry), kafkax.DLQTopic(cfg.TopicAnomalies))

	// Each server is built by its own constructor from its dependencies.
	// Both relays (events to Kafka, commands to MQTT) share their timing.
	timing := relaytiming.Timing{BatchSize: cfg.OutboxBatchSize, PollInterval: cfg.OutboxPollInterval, FlushTimeout: cfg.ShutdownTimeout / 2}
	events := eventstore.New(pool)
	ingestionSrv := ingestion.New(ingestion.Deps{Events: events, Topic: cfg.TopicTelemetry,
		DeadLetters: dlq{producer, cfg.TopicTelemetryDLQ}, Validator: val, Log: log})
	querySrv := query.New(query.Deps{Pool: pool, Validator: val, Log: log})
	actionsSrv := actions.New(actions.Deps{Pool: pool, Events: events, Rules: cfg.AnomalyCommandRules, Validator: val, Log: log,
		Relay: outbox.Config{Timing: timing}})

	mq := mqttx.Connect(mqttx.Options{Broker: cfg.MQTTBroker(), ClientID: cfg.MQTTClientID, ShareGroup: cfg.MQTTShareGroup, Log: log.With("component", "mqtt")},
		[]mqttx.Subscription{ingestionSrv.Subscription(), actionsSrv.AckSubscription()})
	defer mq.Close(2 * time.Second)
	cmdRelay, err := actionsSrv.CommandRelay(mq)
	if err != nil {
		return err
	}
	kafkaRelay, err := eventstore.NewRelay(pool, kafkax.Publisher{Client: producer}, eventstore.RelayConfig{
		Timing: timing, Wake: events.Published(),
	}, log)
	if err != nil {
		return err
	}

	// The anomaly loop: the detector (hosted by the query server) scores
	// telemetry with the AI inference service; the actions server turns
	// anomalies.v1 into commands.
	scorer := inference.New(inference.Config{BaseURL: cfg.AIInferenceURL(), Timeout: cfg.AIInferenceTimeout}, val)
	det, err := detector.New(pool, events, scorer, val, detector.Config{Window: cfg.AnomalyWindow, Topic: cfg.TopicAnomalies}, log)
	if err != nil {
		return err
	}
	consumer, err := kafkax.NewGroupConsumer(brokers, cfg.QueryConsumerGroup, cfg.TopicTelemetry, "platform-query")
	if err != nil {
		return err
	}
	defer consumer.Close()
	detConsumer, err := kafkax.NewGroupConsumer(brokers, cfg.AnomalyConsumerGroup, cfg.TopicTelemetry, "platform-anomaly-detector")
	if err != nil {
		return err
	}
	defer detConsumer.Close()
	actConsumer, err := kafkax.NewGroupConsumer(brokers, cfg.ActionsConsumerGroup, cfg.TopicAnomalies, "platform-actions")
	if err != nil {
		return err
	}
	defer actConsumer.Close()

	pgCheck := func(ctx context.Context) error { return pool.Ping(ctx) }
	kafkaCheck := func(ctx context.Context) error { return kafkax.Ping(ctx, producer) }
	handlers := []http.Handler{
		ingestionSrv.Handler(map[string]httpx.Check{"postgres": pgCheck, "kafka": kafkaCheck, "mqtt": mq.Ping}),
		querySrv.Handler(map[string]httpx.Check{"postgres": pgCheck, "kafka": kafkaCheck, "inference": scorer.Ping}),
		actionsSrv.Handler(map[string]httpx.Check{"postgres": pgCheck, "mqtt": mq.Ping}),
	}

	// Workers: relays and consumer stop when workCtx ends.
	workCtx, stopWork := context.WithCancel(context.Background())
	defer stopWork()
	var work sync.WaitGroup
	work.Add(6)
	go func() { defer work.Done(); dedup.RunPruner(workCtx, pool, time.Hour, dedup.Retention, log) }()
	go func() { defer work.Done(); _ = kafkaRelay.Run(workCtx) }()
	go func() { defer work.Done(); _ = cmdRelay.Run(workCtx) }()
	go func() { defer work.Done(); query.Consume(workCtx, consumer, producer, querySrv.Projector(), log) }()
	go func() { defer work.Done(); detector.Run(workCtx, detConsumer, producer, det) }()
	go func() {
		defer work.Done()
		actions.RunAnomalyConsumer(workCtx, actConsumer, producer, actionsSrv.AnomalyRules())
	}()

	servers := make([]*http.Server, len(defs))
	errc := make(chan error, len(defs))
	for i, d := range defs {
		servers[i] = httpx.NewServer(lns[i].Addr().String(), handlers[i], log)
		go func() {
			log.Info("server listening", "server", d.name, "addr", lns[i].Addr().String())
			if err := servers[i].Serve(lns[i]); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s server: %w", d.name, err)
			}
		}()
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	case runErr = <-errc:
		log.Error("server failed, shutting down", "err", runErr)
	}

	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	// 1. Stop accepting and drain in-flight requests.
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Shutdown(sctx); err != nil {
				log.Warn("server did not drain in time", "server", defs[i].name, "err", err)
			}
		}()
	}
	wg.Wait()
	// 2. Relays flush (the command relay still has its MQTT session), the
	// consumers finish their batch (committed after its transaction).
	stopWork()
	done := make(chan struct{})
	go func() { work.Wait(); close(done) }()
	select {
	case <-done:
	case <-sctx.Done():
		log.Warn("workers did not stop within the shutdown timeout")
	}
	// 3. Stop MQTT intake (in-flight batches finish; unacked ones are redelivered later).
	mq.Close(2 * time.Second)
	fctx, fcancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = producer.Flush(fctx)
	fcancel()
	log.Info("stopped")
	return runErr
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}
