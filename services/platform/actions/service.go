// Package actions is the actions server (:8082): commands to devices over
// MQTT through the outbox, and their acknowledgements.
package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"platform/actions/client"
	"platform/internal/contracts"
	"platform/internal/eventstore"
	"platform/internal/outbox"
	"platform/internal/tracing"
)

// AckConsumer keys processed_messages for acknowledgements.
const AckConsumer = "actions-ack"

// ErrConflict: the command id exists for another device or command.
var ErrConflict = errors.New("command_id already used for a different command")

// ErrInvalidAck: an ack payload that does not match command-ack.schema.json.
var ErrInvalidAck = errors.New("invalid ack")

// ErrNotFound: no such command.
var ErrNotFound = errors.New("command not found")

// CommandTopic is the MQTT topic a device receives its commands on.
func CommandTopic(deviceID string) string { return "devices/" + deviceID + "/commands" }

// CommandMessage is command-message.schema.json.
type CommandMessage struct {
	CommandID uuid.UUID       `json:"command_id"`
	DeviceID  string          `json:"device_id"`
	Name      string          `json:"name"`
	Args      json.RawMessage `json:"args"`
	IssuedAt  string          `json:"issued_at"`
	// Traceparent is the trace that issued the command; the device echoes
	// it in its ack.
	Traceparent string `json:"traceparent,omitempty"`
}

// Ack is command-ack.schema.json.
type Ack struct {
	CommandID uuid.UUID `json:"command_id"`
	Status    string    `json:"status"`
	Result    *string   `json:"result"`
	// Traceparent is the command's, echoed by the device; any other value
	// is ignored.
	Traceparent any `json:"traceparent"`
}

// Service issues and tracks commands.
type Service struct {
	pool   *pgxpool.Pool
	store  *eventstore.Store
	val    *contracts.Validator
	tracer trace.Tracer // the acks' spans
	log    *slog.Logger
	now    func() time.Time
}

// newService returns the actions service: it reads from pool and writes
// through store.
func newService(pool *pgxpool.Pool, store *eventstore.Store, val *contracts.Validator, tracer trace.Tracer, log *slog.Logger) *Service {
	return &Service{pool: pool, store: store, val: val, tracer: tracer, log: log.With("component", "actions"), now: time.Now}
}

const selectCommand = `SELECT command_id, device_id, name, args, status, issued_at, sent_at, acknowledged_at, failed_at, result FROM commands`

func scanCommand(row pgx.Row) (client.Command, error) {
	var c client.Command
	var args []byte
	err := row.Scan(&c.CommandID, &c.DeviceID, &c.Name, &args, &c.Status, &c.IssuedAt, &c.SentAt, &c.AcknowledgedAt, &c.FailedAt, &c.Result)
	c.Args = args
	c.IssuedAt = c.IssuedAt.UTC()
	for _, p := range []**time.Time{&c.SentAt, &c.AcknowledgedAt, &c.FailedAt} {
		if *p != nil {
			u := (*p).UTC()
			*p = &u
		}
	}
	return c, err
}

// Issue records a CommandIssued event, the command row and an outbox row
// for MQTT, in one transaction. A known command_id returns the existing
// command with created=false and enqueues nothing. The event and the
// command message carry ctx's trace context.
func (s *Service) Issue(ctx context.Context, deviceID string, req client.CommandRequest) (cmd client.Command, created bool, err error) {
	args := []byte("{}")
	if req.Args != nil {
		if args, err = json.Marshal(req.Args); err != nil {
			return cmd, false, err
		}
	}
	traceparent := tracing.FromContext(ctx)
	err = s.store.Write(ctx, []string{deviceID}, func(tx *eventstore.Tx) error {
		now := s.now().UTC().Truncate(time.Microsecond)
		tag, err := tx.Exec(ctx, `
			INSERT INTO commands (command_id, device_id, name, args, status, issued_at)
			VALUES ($1, $2, $3, $4, 'issued', $5) ON CONFLICT (command_id) DO NOTHING`,
			req.CommandID, deviceID, req.Name, string(args), now)
		if err != nil {
			return err
		}
		created = tag.RowsAffected() == 1
		if !created {
			cmd, err = scanCommand(tx.QueryRow(ctx, selectCommand+` WHERE command_id = $1`, req.CommandID))
			if err != nil {
				return err
			}
			if cmd.DeviceID != deviceID || cmd.Name != req.Name {
				return ErrConflict
			}
			return nil
		}
		msg, err := json.Marshal(CommandMessage{CommandID: req.CommandID, DeviceID: deviceID, Name: req.Name, Args: args, IssuedAt: now.Format(time.RFC3339Nano), Traceparent: traceparent})
		if err != nil {
			return err
		}
		if err := tx.Append(ctx, []eventstore.Event{{
			EventID: uuid.New(), StreamID: deviceID, Type: eventstore.CommandIssued, Payload: msg, RecordedAt: now,
			TraceContext: traceparent,
		}}); err != nil {
			return err
		}
		if err := outbox.Enqueue(ctx, tx, outbox.SinkMQTT, []outbox.Message{{
			Topic: CommandTopic(deviceID), Key: req.CommandID.String(), Payload: msg,
		}}); err != nil {
			return err
		}
		cmd, err = scanCommand(tx.QueryRow(ctx, selectCommand+` WHERE command_id = $1`, req.CommandID))
		return err
	})
	return cmd, created, err
}

// Get returns a command.
func (s *Service) Get(ctx context.Context, id uuid.UUID) (client.Command, error) {
	c, err := scanCommand(s.pool.QueryRow(ctx, selectCommand+` WHERE command_id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return c, ErrNotFound
	}
	return c, err
}

// MarkSent is the relay's AfterPublish: the broker acked the commands.
func MarkSent(ctx context.Context, tx pgx.Tx, acked []outbox.Message) error {
	ids := make([]string, len(acked))
	for i, m := range acked {
		ids[i] = m.Key
	}
	_, err := tx.Exec(ctx, `
		UPDATE commands SET status = 'sent', sent_at = now()
		WHERE command_id = ANY($1::uuid[]) AND status = 'issued'`, ids)
	return err
}

// Acknowledge applies a device's ack received on
// devices/{deviceID}/commands/ack. Invalid payloads and unknown commands are
// reported as errors for the caller to log; they must not stop the
// subscriber. A repeated ack is a no-op. An ack that echoes its command's
// traceparent closes that trace with the span of applying it.
func (s *Service) Acknowledge(ctx context.Context, deviceID string, payload []byte) (err error) {
	if err := s.val.Validate(contracts.CommandAck, payload); err != nil {
		return fmt.Errorf("%w from %s: %w", ErrInvalidAck, deviceID, err)
	}
	var ack Ack
	if err := json.Unmarshal(payload, &ack); err != nil {
		return fmt.Errorf("%w from %s: %w", ErrInvalidAck, deviceID, err)
	}
	status := client.StatusAcknowledged
	if ack.Status == "error" {
		status = client.StatusFailed
	}
	echoed, _ := ack.Traceparent.(string)
	ctx, span := s.tracer.Start(tracing.Under(ctx, tracing.Parse(echoed)), "apply command ack",
		trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attribute.String("command_id", ack.CommandID.String()),
			attribute.String("status", status)))
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	traceparent := tracing.FromContext(ctx)
	return s.store.Write(ctx, []string{deviceID}, func(tx *eventstore.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO processed_messages (consumer, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
			AckConsumer, ack.CommandID.String())
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return nil // already applied
		}
		now := s.now().UTC().Truncate(time.Microsecond)
		tag, err = tx.Exec(ctx, `
			UPDATE commands SET status = $3::text,
			    acknowledged_at = CASE WHEN $3::text = 'acknowledged' THEN $4::timestamptz END,
			    failed_at = CASE WHEN $3::text = 'failed' THEN $4::timestamptz END,
			    sent_at = coalesce(sent_at, $4::timestamptz),
			    result = $5::text
			WHERE command_id = $1 AND device_id = $2 AND status IN ('issued', 'sent')`,
			ack.CommandID, deviceID, status, now, ack.Result)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("ack from %s for unknown command %s: %w", deviceID, ack.CommandID, ErrNotFound)
		}
		ev, _ := json.Marshal(map[string]any{"command_id": ack.CommandID, "status": status, "result": ack.Result, "acknowledged_at": now.Format(time.RFC3339Nano)})
		return tx.Append(ctx, []eventstore.Event{{
			EventID: uuid.New(), StreamID: deviceID, Type: eventstore.CommandAcknowledged, Payload: ev, RecordedAt: now,
			TraceContext: traceparent,
		}})
	})
}
