package actions

import (
	"context"
	"errors"
	"log/slog"

	"platform/internal/mqttx"
)

// AckFilter is the MQTT topic filter of command acknowledgements.
const AckFilter = "devices/+/commands/ack"

// ackMaxBatch bounds the acknowledgements applied in one go.
const ackMaxBatch = 50

// ackHandler returns the mqttx handler of devices/+/commands/ack: invalid
// or unknown acks are logged and dropped; storage errors are returned so
// the batch is retried (and acknowledged to the broker only afterwards).
func ackHandler(svc *Service, log *slog.Logger) mqttx.BatchHandler {
	return func(ctx context.Context, msgs []mqttx.Message) error {
		for _, m := range msgs {
			device := mqttx.TopicLevel(m.Topic, 1)
			err := svc.Acknowledge(ctx, device, m.Payload)
			switch {
			case err == nil:
			case errors.Is(err, ErrInvalidAck), errors.Is(err, ErrNotFound):
				log.Warn("command ack dropped", "topic", m.Topic, "err", err)
			default:
				return err
			}
		}
		return nil
	}
}
