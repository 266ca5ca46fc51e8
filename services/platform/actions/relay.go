package actions

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"platform/internal/outbox"
	"platform/internal/tracing"
)

// MQTTPublisher is what the command relay needs from the MQTT broker: a
// QoS 1 publish that returns once the broker acknowledged it (PUBACK).
type MQTTPublisher interface {
	Publish(ctx context.Context, topic string, payload []byte) error
}

type commandPublisher struct {
	mqtt   MQTTPublisher
	tracer trace.Tracer
}

// Publish publishes each command under a span of its own, child of the
// traceparent the command message carries (the one that issued it).
func (p commandPublisher) Publish(ctx context.Context, msgs []outbox.Message) (int, error) {
	for i, m := range msgs {
		var carried struct {
			Traceparent string `json:"traceparent"`
		}
		_ = json.Unmarshal(m.Payload, &carried) // our own command-message.schema.json; none = a new trace
		_, span := p.tracer.Start(tracing.Under(ctx, tracing.Parse(carried.Traceparent)), "publish "+CommandTopic("+"),
			trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attribute.String("messaging.system", "mqtt"),
				attribute.String("messaging.destination.name", m.Topic), attribute.String("command_id", m.Key)))
		err := p.mqtt.Publish(ctx, m.Topic, m.Payload)
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
		if err != nil {
			return i, err
		}
	}
	return len(msgs), nil
}

// newCommandRelay relays the mqtt rows of the outbox to pub and marks the
// commands sent in the transaction that deletes the rows.
func newCommandRelay(pool *pgxpool.Pool, pub MQTTPublisher, cfg outbox.Config, tracer trace.Tracer, log *slog.Logger) (*outbox.Relay, error) {
	cfg.Sink = outbox.SinkMQTT
	cfg.AfterPublish = MarkSent
	if cfg.BatchSize == 0 || cfg.BatchSize > 100 {
		cfg.BatchSize = 100
	}
	return outbox.NewRelay(pool, commandPublisher{mqtt: pub, tracer: tracer}, cfg, log)
}
