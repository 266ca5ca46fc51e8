package kafkax

import (
	"encoding/base64"
	"encoding/json"
	"time"

	"platform/internal/metrics"
)

// DeadLetter is dlq-message.schema.json: a record (Source "kafka") or an
// MQTT payload (Source "mqtt") rejected for good, with the original bytes.
type DeadLetter struct {
	Source        string   `json:"source"`
	Topic         string   `json:"topic"`
	Reason        string   `json:"reason"`
	Details       []string `json:"details,omitempty"`
	PayloadBase64 string   `json:"payload_base64"`
	ReceivedAt    string   `json:"received_at"`
	Consumer      string   `json:"consumer,omitempty"`
	Error         string   `json:"error,omitempty"`
	Attempts      int      `json:"attempts,omitempty"`
	Partition     *int32   `json:"partition,omitempty"`
	Offset        *int64   `json:"offset,omitempty"`
	Key           string   `json:"key,omitempty"`
}

// SetPayload records the original bytes and when they were rejected.
func (d *DeadLetter) SetPayload(payload []byte, at time.Time) {
	d.PayloadBase64 = base64.StdEncoding.EncodeToString(payload)
	d.ReceivedAt = at.UTC().Format(time.RFC3339Nano)
}

// Marshal is the record value.
func (d DeadLetter) Marshal() ([]byte, error) { return json.Marshal(d) }

// CountDeadLetter counts a dead letter of consumer (on /readyz).
func CountDeadLetter(consumer string) { metrics.DeadLetters.Add(consumer, 1) }
