package ingestion

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"platform/internal/contracts"
	"platform/internal/kafkax"
	"platform/internal/mqttx"
	"platform/internal/tracing"
)

// TelemetryFilter is the MQTT topic filter of device telemetry.
const TelemetryFilter = "devices/+/telemetry"

// mqttMaxBatch bounds the MQTT readings stored in one transaction.
const mqttMaxBatch = 500

// DeadLetter is dlq-message.schema.json.
type DeadLetter = kafkax.DeadLetter

// dlqConsumer names MQTT intake in the dead-letter counters.
const dlqConsumer = "mqtt-telemetry"

// DeadLetterPublisher is where rejected MQTT payloads go (Kafka topic
// telemetry.dlq in production).
type DeadLetterPublisher interface {
	PublishDeadLetter(ctx context.Context, key string, dl DeadLetter) error
}

// MQTTHandler validates and stores telemetry published by devices.
type MQTTHandler struct {
	svc    *Service
	val    *contracts.Validator
	dlq    DeadLetterPublisher
	tracer trace.Tracer
	log    *slog.Logger
	now    func() time.Time
}

// newMQTTHandler returns the handler for devices/+/telemetry.
func newMQTTHandler(svc *Service, val *contracts.Validator, dlq DeadLetterPublisher, tracer trace.Tracer, log *slog.Logger) *MQTTHandler {
	return &MQTTHandler{svc: svc, val: val, dlq: dlq, tracer: tracer, log: log.With("component", "mqtt-telemetry"), now: time.Now}
}

type mqttReading struct {
	EventID  string             `json:"event_id"`
	DeviceID string             `json:"device_id"`
	TS       time.Time          `json:"ts"`
	Metrics  map[string]float64 `json:"metrics"`
	// Traceparent, when it is a W3C traceparent, is continued; any other
	// value is ignored (a new trace starts), never a reason to refuse.
	Traceparent any `json:"traceparent"`
}

// Handle is an mqttx.BatchHandler: invalid payloads go to the dead-letter
// queue, valid ones are stored as one batch. It returns an error only when
// nothing may be acknowledged yet (storage or DLQ unavailable).
func (h *MQTTHandler) Handle(ctx context.Context, msgs []mqttx.Message) error {
	var readings []Reading
	var parents []string
	for _, m := range msgs {
		r, parent, reason, details := h.parse(m)
		if reason != "" {
			dl := DeadLetter{Source: "mqtt", Topic: m.Topic, Reason: reason, Details: details}
			dl.SetPayload(m.Payload, h.now())
			if err := h.dlq.PublishDeadLetter(ctx, m.Topic, dl); err != nil {
				return fmt.Errorf("dead-letter %s: %w", m.Topic, err)
			}
			kafkax.CountDeadLetter(dlqConsumer)
			h.log.Warn("telemetry rejected to the DLQ", "topic", m.Topic, "reason", reason)
			continue
		}
		readings = append(readings, r)
		parents = append(parents, parent)
	}
	if len(readings) == 0 {
		return nil
	}
	spans := tracing.StartBatch(ctx, h.tracer, "mqtt "+TelemetryFilter, parents, trace.SpanKindConsumer,
		attribute.String("messaging.system", "mqtt"))
	res, err := h.svc.ingest(ctx, readings, func(i int) string { return string(spans.TraceparentOf(i)) })
	spans.End(err)
	if err != nil {
		return err
	}
	h.log.Debug("mqtt telemetry stored", "accepted", res.Accepted, "duplicates", res.Duplicates)
	return nil
}

func (h *MQTTHandler) parse(m mqttx.Message) (r Reading, traceparent, reason string, details []string) {
	device := mqttx.TopicLevel(m.Topic, 1)
	if err := h.val.Validate(contracts.MQTTTelemetry, m.Payload); err != nil {
		var me *contracts.MalformedError
		if errors.As(err, &me) {
			return Reading{}, "", "malformed JSON", []string{me.Err.Error()}
		}
		var ie *contracts.InvalidError
		if errors.As(err, &ie) {
			var d []string
			for _, v := range ie.Violations {
				d = append(d, v.Pointer+": "+v.Message)
			}
			return Reading{}, "", "does not match mqtt-telemetry.schema.json", d
		}
		return Reading{}, "", err.Error(), nil
	}
	var in mqttReading
	if err := json.Unmarshal(m.Payload, &in); err != nil {
		return Reading{}, "", "does not decode", []string{err.Error()}
	}
	if in.DeviceID != "" && in.DeviceID != device {
		return Reading{}, "", "device_id differs from the topic", []string{fmt.Sprintf("payload %q, topic %q", in.DeviceID, device)}
	}
	if !contracts.DeviceID.MatchString(device) {
		return Reading{}, "", "invalid device id in topic", []string{"must match " + contracts.DeviceID.String()}
	}
	id, err := uuid.Parse(in.EventID)
	if err != nil {
		return Reading{}, "", "invalid event_id", []string{err.Error()}
	}
	traceparent, _ = in.Traceparent.(string)
	return Reading{EventID: id, DeviceID: device, TS: in.TS, Metrics: in.Metrics}, traceparent, "", nil
}
