package app

import (
	"context"
	"log/slog"
	"net/http"
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
	"platform/internal/mqttx"
	"platform/internal/outbox"
	"platform/internal/relaytiming"
	"platform/query"
)

// application is the three servers' handlers and the background workers:
// both relays (events to Kafka, commands to MQTT), the query projections,
// the anomaly detector (hosted by the query server), the actions' anomaly
// rules and the dedup pruner.
type application struct {
	handlers  map[string]http.Handler
	workers   []func(context.Context)
	mq        *mqttx.Client
	consumers []*kgo.Client
	infra     *infrastructure
}

func newApplication(cfg config.Config, in *infrastructure, log *slog.Logger) (*application, error) {
	a := &application{infra: in}
	val := contracts.Default()
	events := eventstore.New(in.pool)
	timing := relaytiming.Timing{BatchSize: cfg.OutboxBatchSize, PollInterval: cfg.OutboxPollInterval, FlushTimeout: cfg.ShutdownTimeout / 2}

	ingestionSrv := ingestion.New(ingestion.Deps{Events: events, Topic: cfg.TopicTelemetry,
		DeadLetters: dlq{in.producer, cfg.TopicTelemetryDLQ}, Validator: val, Log: log})
	querySrv := query.New(query.Deps{Pool: in.pool, Validator: val, Log: log})
	actionsSrv := actions.New(actions.Deps{Pool: in.pool, Events: events, Rules: cfg.AnomalyCommandRules, Validator: val, Log: log,
		Relay: outbox.Config{Timing: timing}})

	a.mq = mqttx.Connect(mqttx.Options{Broker: cfg.MQTTBroker(), ClientID: cfg.MQTTClientID, ShareGroup: cfg.MQTTShareGroup,
		HandlerTimeout: cfg.RequestTimeout, Log: log.With("component", "mqtt")},
		[]mqttx.Subscription{ingestionSrv.Subscription(), actionsSrv.AckSubscription()})
	cmdRelay, err := actionsSrv.CommandRelay(a.mq)
	if err != nil {
		return a.fail(err)
	}
	kafkaRelay, err := eventstore.NewRelay(in.pool, kafkax.Publisher{Client: in.producer}, eventstore.RelayConfig{
		Timing: timing, Wake: events.Published(),
	}, log)
	if err != nil {
		return a.fail(err)
	}
	scorer := inference.New(inference.Config{BaseURL: cfg.AIInferenceURL(), Timeout: cfg.AIInferenceTimeout}, val)
	det, err := detector.New(in.pool, events, scorer, val, detector.Config{Window: cfg.AnomalyWindow, Topic: cfg.TopicAnomalies}, log)
	if err != nil {
		return a.fail(err)
	}
	projections, err := a.consumer(cfg.QueryConsumerGroup, cfg.TopicTelemetry, "platform-query")
	if err != nil {
		return a.fail(err)
	}
	detections, err := a.consumer(cfg.AnomalyConsumerGroup, cfg.TopicTelemetry, "platform-anomaly-detector")
	if err != nil {
		return a.fail(err)
	}
	anomalies, err := a.consumer(cfg.ActionsConsumerGroup, cfg.TopicAnomalies, "platform-actions")
	if err != nil {
		return a.fail(err)
	}

	// Every request waits at most REQUEST_TIMEOUT on a dependency, then answers 503.
	bounded := func(h http.Handler) http.Handler { return httpx.Bound(cfg.RequestTimeout, h) }
	a.handlers = map[string]http.Handler{
		"ingestion": bounded(ingestionSrv.Handler(map[string]httpx.Check{"postgres": in.pingPostgres, "kafka": in.pingKafka, "mqtt": a.mq.Ping})),
		"query":     bounded(querySrv.Handler(map[string]httpx.Check{"postgres": in.pingPostgres, "kafka": in.pingKafka, "inference": scorer.Ping})),
		"actions":   bounded(actionsSrv.Handler(map[string]httpx.Check{"postgres": in.pingPostgres, "mqtt": a.mq.Ping})),
	}
	a.workers = []func(context.Context){
		func(ctx context.Context) { dedup.RunPruner(ctx, in.pool, time.Hour, dedup.Retention, log) },
		func(ctx context.Context) { _ = kafkaRelay.Run(ctx) },
		func(ctx context.Context) { _ = cmdRelay.Run(ctx) },
		func(ctx context.Context) { query.Consume(ctx, projections, in.producer, querySrv.Projector(), log) },
		func(ctx context.Context) { detector.Run(ctx, detections, in.producer, det) },
		func(ctx context.Context) {
			actions.RunAnomalyConsumer(ctx, anomalies, in.producer, actionsSrv.AnomalyRules())
		},
	}
	return a, nil
}

func (a *application) consumer(group, topic, clientID string) (*kgo.Client, error) {
	cl, err := kafkax.NewGroupConsumer(a.infra.brokers, group, topic, clientID)
	if err == nil {
		a.consumers = append(a.consumers, cl)
	}
	return cl, err
}

func (a *application) fail(err error) (*application, error) {
	a.close()
	return nil, err
}

// stopIntake ends MQTT intake: in-flight batches finish, unacknowledged
// messages are redelivered to the next session.
func (a *application) stopIntake() { a.mq.Close(2 * time.Second) }

func (a *application) close() {
	for _, cl := range a.consumers {
		cl.Close()
	}
	a.stopIntake()
}

// dlq publishes MQTT intake's dead letters to the DLQ topic.
type dlq struct {
	cl    *kgo.Client
	topic string
}

func (d dlq) PublishDeadLetter(ctx context.Context, key string, dl ingestion.DeadLetter) error {
	return kafkax.PublishDeadLetter(ctx, d.cl, d.topic, []byte(key), dl)
}
