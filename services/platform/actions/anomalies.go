package actions

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"platform/actions/client"
	"platform/internal/contracts"
	"platform/internal/kafkax"
	"platform/internal/tracing"
)

// commandNS is the UUIDv5 namespace of commands issued for anomalies.
var commandNS = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://platform.invalid/anomaly-command"))

// CommandIDFor is the command id issued for the anomaly event anomalyID:
// the same anomaly, however often delivered, yields the same command.
func CommandIDFor(anomalyID uuid.UUID) uuid.UUID { return uuid.NewSHA1(commandNS, anomalyID[:]) }

// anomaly is the part of anomaly-event.schema.json the rules need.
type anomaly struct {
	EventID  uuid.UUID `json:"event_id"`
	DeviceID string    `json:"device_id"`
	Metric   string    `json:"metric"`
	TS       time.Time `json:"ts"`
	Value    float64   `json:"value"`
	Score    float64   `json:"score"`
}

// AnomalyRules issues commands for anomalies.v1 records: for a metric with
// a rule (ANOMALY_COMMAND_RULES, metric -> command name) it issues that
// command through Service.Issue, exactly as POST
// /actions/v1/devices/{id}/commands would, with command_id =
// CommandIDFor(anomaly event id): a redelivered anomaly returns the
// existing command and sends nothing again.
type AnomalyRules struct {
	svc    *Service
	val    *contracts.Validator
	rules  map[string]string
	tracer trace.Tracer
	log    *slog.Logger
}

// newAnomalyRules returns the anomalies.v1 handler.
func newAnomalyRules(svc *Service, val *contracts.Validator, rules map[string]string, tracer trace.Tracer, log *slog.Logger) *AnomalyRules {
	return &AnomalyRules{svc: svc, val: val, rules: rules, tracer: tracer, log: log.With("component", "actions-anomalies")}
}

// Apply handles record values in order and returns how many commands it
// created. Anomalies without a rule are skipped. An invalid value, or one
// whose command id is taken by another command, stops the call with a
// *kafkax.PermanentError naming its index (the consume loop dead-letters
// it and applies the rest again: commands already issued are not issued
// twice); a storage error is returned as is (the caller retries, not
// committing). Each command is issued under the span of its record
// (tracing.BatchOf), so the command carries the anomaly's trace on.
func (a *AnomalyRules) Apply(ctx context.Context, values [][]byte) (created int, err error) {
	for i, v := range values {
		var an anomaly
		if err := a.val.Validate(contracts.AnomalyEvent, v); err != nil {
			return created, kafkax.Permanent(i, "not an anomaly event", err)
		}
		if err := json.Unmarshal(v, &an); err != nil {
			return created, kafkax.Permanent(i, "not an anomaly event", err)
		}
		name, ok := a.rules[an.Metric]
		if !ok {
			continue
		}
		req := client.CommandRequest{CommandID: CommandIDFor(an.EventID), Name: name, Args: map[string]any{
			"anomaly_event_id": an.EventID.String(), "metric": an.Metric,
			"ts": an.TS.UTC().Format(time.RFC3339Nano), "value": an.Value, "score": an.Score,
		}}
		cmd, isNew, err := a.svc.Issue(tracing.Under(ctx, tracing.BatchOf(ctx, i)), an.DeviceID, req)
		switch {
		case errors.Is(err, ErrConflict):
			return created, kafkax.Permanent(i, "command id taken by another command (rule changed?)", err)
		case err != nil:
			return created, err
		case isNew:
			created++
			a.log.Info("command issued for anomaly", "device_id", an.DeviceID, "metric", an.Metric, "command", name, "command_id", cmd.CommandID, "anomaly", an.EventID)
		}
	}
	return created, nil
}

// MaxPoll bounds the records of one anomalies.v1 poll.
const MaxPoll = 200

// RunAnomalyConsumer consumes anomalies.v1 with cl (kafkax.NewGroupConsumer
// on ACTIONS_CONSUMER_GROUP) until ctx ends, committing each poll after its
// commands are stored; a poison record goes to anomalies.v1.dlq.
func RunAnomalyConsumer(ctx context.Context, cl, dlq *kgo.Client, a *AnomalyRules) {
	kafkax.Consume(ctx, kafkax.ConsumerOptions{
		Client: cl, Name: "actions-anomalies", MaxPoll: MaxPoll, DeadLetters: dlq, Log: a.log, Tracer: a.tracer,
		Apply: func(ctx context.Context, recs []*kgo.Record) error {
			vals := make([][]byte, len(recs))
			for i, r := range recs {
				vals[i] = r.Value
			}
			_, err := a.Apply(ctx, vals)
			return err
		},
	})
}
