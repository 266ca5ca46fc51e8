package contracts

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Telemetry is a TelemetryReceived event as published on the telemetry
// topic (telemetry-event.schema.json): the fields its consumers read.
type Telemetry struct {
	EventID  uuid.UUID          `json:"event_id"`
	DeviceID string             `json:"device_id"`
	Version  int64              `json:"version"`
	TS       time.Time          `json:"ts"`
	Metrics  map[string]float64 `json:"metrics"`
}

// DecodeTelemetry validates b against telemetry-event.schema.json and
// decodes it.
func (v *Validator) DecodeTelemetry(b []byte) (Telemetry, error) {
	var e Telemetry
	if err := v.Validate(TelemetryEvent, b); err != nil {
		return e, err
	}
	return e, json.Unmarshal(b, &e)
}
