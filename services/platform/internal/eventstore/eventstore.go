// Package eventstore is the event store: per-device streams in the events
// table, written through a Store that owns the transaction, and published
// to Kafka by a Relay that follows a cursor over the same table. The events
// table is the Kafka outbox: an event with a topic is published, none is
// deleted.
package eventstore

import (
	"errors"
	"time"

	"github.com/google/uuid"
)

// Event types.
const (
	TelemetryReceived   = "TelemetryReceived"
	CommandIssued       = "CommandIssued"
	CommandAcknowledged = "CommandAcknowledged"
	AnomalyDetected     = "AnomalyDetected"
)

// ErrDuplicate: an appended event's id is already stored. The transaction
// was rolled back; Tx.AppendNew appends only the ids not stored instead.
var ErrDuplicate = errors.New("event id already stored")

// Event is one row of the events table. Tx.Append fills Version, and
// RecordedAt when it is zero.
type Event struct {
	EventID    uuid.UUID
	StreamID   string
	Version    int64
	Type       string
	Topic      string // Kafka topic the relay publishes the event to; "" = none
	Payload    []byte // JSON object: the event's own fields
	RecordedAt time.Time
	// TraceContext is the W3C traceparent of the span that wrote the event
	// ("" = none): stored as text, carried by the relay into the record's
	// headers.
	TraceContext string
}
