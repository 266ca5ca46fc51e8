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
	"platform/internal/inference"
	"platform/internal/kafkax"
	"platform/internal/mqttx"
	"platform/internal/outbox"
	"platform/internal/relay"
	"platform/internal/tracing"
	"platform/query"
)

// application is the servers' parts and the background workers: both
// relays (events to Kafka, commands to MQTT), the query projections, the
// anomaly detector (hosted by the query server), the actions' anomaly rules
// and the dedup pruner.
type application struct {
	ingestion      *ingestion.Server
	query          *query.Server
	actions        *actions.Server
	scorer         *inference.Client
	requestTimeout time.Duration
	workers        []worker
	mq             *mqttx.Client
	consumers      []*kgo.Client
	infra          *infrastructure
	tracing        *tracing.Tracing
}

// worker is a loop that runs until its context ends. An error is a failure
// for good: it stops the whole process, whose supervisor restarts it.
type worker struct {
	name string
	run  func(context.Context) error
}

func newApplication(cfg config.Config, in *infrastructure, traces *tracing.Tracing, log *slog.Logger) (*application, error) {
	a := &application{infra: in, requestTimeout: cfg.RequestTimeout, tracing: traces}
	val := contracts.Default()
	events := eventstore.New(in.pool)
	timing := relay.Timing{BatchSize: cfg.OutboxBatchSize, PollInterval: cfg.OutboxPollInterval, FlushTimeout: cfg.ShutdownTimeout / 2}

	a.ingestion = ingestion.New(ingestion.Deps{Events: events, Topic: cfg.TopicTelemetry,
		DeadLetters: dlq{in.producer, cfg.TopicTelemetryDLQ}, Validator: val, Tracing: traces, Log: log})
	a.query = query.New(query.Deps{Pool: in.pool, Validator: val, Log: log})
	a.actions = actions.New(actions.Deps{Pool: in.pool, Events: events, Rules: cfg.AnomalyCommandRules, Validator: val, Tracing: traces, Log: log,
		Relay: outbox.Config{Timing: timing}})

	a.mq = mqttx.Connect(mqttx.Options{Broker: cfg.MQTTBroker(), ClientID: cfg.MQTTClientID,
		HandlerTimeout: cfg.RequestTimeout, Log: log.With("component", "mqtt")},
		[]mqttx.Subscription{a.ingestion.Subscription(), a.actions.AckSubscription()})
	cmdRelay, err := a.actions.CommandRelay(a.mq)
	if err != nil {
		return a.fail(err)
	}
	kafkaRelay, err := eventstore.NewRelay(in.pool, kafkax.Publisher{Client: in.producer, Tracer: traces.Tracer(tracing.Relay)}, eventstore.RelayConfig{
		Timing: timing, Wake: events.Published(),
	}, log)
	if err != nil {
		return a.fail(err)
	}
	a.scorer = inference.New(inference.Config{BaseURL: cfg.AIInferenceURL(), Timeout: cfg.AIInferenceTimeout,
		Transport: traces.Transport(tracing.Detector, http.DefaultTransport)}, val)
	det, err := detector.New(in.pool, events, a.scorer, val, detector.Config{Window: cfg.AnomalyWindow, Topic: cfg.TopicAnomalies,
		Tracer: traces.Tracer(tracing.Detector)}, log)
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

	a.workers = []worker{
		{"dedup pruner", func(ctx context.Context) error {
			dedup.RunPruner(ctx, in.pool, time.Hour, dedup.Retention, log)
			return nil
		}},
		{"event relay", kafkaRelay.Run},
		{"command relay", cmdRelay.Run},
		{"query projections", func(ctx context.Context) error {
			query.Consume(ctx, projections, in.producer, a.query.Projector(), traces.Tracer(tracing.Projector), log)
			return nil
		}},
		{"anomaly detector", func(ctx context.Context) error {
			detector.Run(ctx, detections, in.producer, det)
			return nil
		}},
		{"anomaly rules", func(ctx context.Context) error {
			actions.RunAnomalyConsumer(ctx, anomalies, in.producer, a.actions.AnomalyRules())
			return nil
		}},
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
