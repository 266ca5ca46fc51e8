package actions

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"platform/internal/outbox"
)

// MQTTPublisher is what the command relay needs from the MQTT broker: a
// QoS 1 publish that returns once the broker acknowledged it (PUBACK).
type MQTTPublisher interface {
	Publish(ctx context.Context, topic string, payload []byte) error
}

type commandPublisher struct{ mqtt MQTTPublisher }

func (p commandPublisher) Publish(ctx context.Context, msgs []outbox.Message) (int, error) {
	for i, m := range msgs {
		if err := p.mqtt.Publish(ctx, m.Topic, m.Payload); err != nil {
			return i, err
		}
	}
	return len(msgs), nil
}

// newCommandRelay relays the mqtt rows of the outbox to pub and marks the
// commands sent in the transaction that deletes the rows.
func newCommandRelay(pool *pgxpool.Pool, pub MQTTPublisher, cfg outbox.Config, log *slog.Logger) (*outbox.Relay, error) {
	cfg.Sink = outbox.SinkMQTT
	cfg.AfterPublish = MarkSent
	if cfg.BatchSize == 0 || cfg.BatchSize > 100 {
		cfg.BatchSize = 100
	}
	return outbox.NewRelay(pool, commandPublisher{mqtt: pub}, cfg, log)
}
