// Package outbox writes messages to the transactional outbox and relays
// them to a broker: a row leaves the table only after the broker acked it.
// It carries the MQTT commands; Kafka events are published from the events
// table itself (package eventstore).
package outbox

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// SinkMQTT marks the rows of the MQTT command relay (the sink column
// keeps the table open to another broker).
const SinkMQTT = "mqtt"

// Message is one outbox row.
type Message struct {
	ID        int64
	Sink      string
	Topic     string
	Key       string
	Payload   []byte
	CreatedAt time.Time
}

// Channel is the LISTEN/NOTIFY channel of a sink.
func Channel(sink string) string { return "outbox_" + sink }

// Enqueue writes msgs (all of one sink) in the caller's transaction with
// COPY, in slice order, and sends one NOTIFY for the transaction.
func Enqueue(ctx context.Context, tx pgx.Tx, sink string, msgs []Message) error {
	if len(msgs) == 0 {
		return nil
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"outbox"}, []string{"sink", "topic", "key", "payload"},
		pgx.CopyFromSlice(len(msgs), func(i int) ([]any, error) {
			m := msgs[i]
			return []any{sink, m.Topic, m.Key, m.Payload}, nil
		}))
	if err != nil {
		return fmt.Errorf("copy outbox: %w", err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, Channel(sink)); err != nil {
		return fmt.Errorf("notify outbox: %w", err)
	}
	return nil
}
