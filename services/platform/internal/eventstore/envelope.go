package eventstore

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// Message is an event as the relay publishes it: key = stream (device id),
// value = the envelope.
type Message struct {
	EventID    uuid.UUID
	Topic      string
	Key        string
	Value      []byte
	RecordedAt time.Time
	// TraceContext is the event's stored traceparent ("" = none).
	TraceContext string

	at cursor // the event's position, which the relay's cursor moves past once it is acked
}

// Envelope is the Kafka value of an event: its row's fields (event_id,
// type, device_id, version, recorded_at) followed by the fields of its
// payload object. telemetry-event.schema.json and anomaly-event.schema.json
// describe the two topics' shapes; the relay needs no per-topic code.
func Envelope(b []byte, e Event) []byte {
	b = append(b, `{"event_id":"`...)
	b = append(b, e.EventID.String()...)
	b = append(b, `","type":`...)
	b = appendString(b, e.Type)
	b = append(b, `,"device_id":`...)
	b = appendString(b, e.StreamID)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, e.Version, 10)
	b = append(b, `,"recorded_at":"`...)
	b = e.RecordedAt.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if inner := objectBody(e.Payload); len(inner) > 0 {
		b = append(b, ',')
		b = append(b, inner...)
	}
	return append(b, '}')
}

// objectBody is the text between the braces of a JSON object, trimmed.
func objectBody(obj []byte) []byte {
	start, end := 0, len(obj)
	for start < end && obj[start] != '{' {
		start++
	}
	for end > start && obj[end-1] != '}' {
		end--
	}
	if end-start < 2 {
		return nil
	}
	body := obj[start+1 : end-1]
	for len(body) > 0 && isSpace(body[0]) {
		body = body[1:]
	}
	for len(body) > 0 && isSpace(body[len(body)-1]) {
		body = body[:len(body)-1]
	}
	return body
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// appendString writes s as a JSON string. Device ids and types never need
// escaping (the schemas' patterns), so the common case is a plain copy.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
