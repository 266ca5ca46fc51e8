package eventstore

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
)

func TestEnvelopeJoinsRowAndPayloadFields(t *testing.T) {
	id := uuid.New()
	at := time.Date(2026, 3, 4, 5, 6, 7, 890000000, time.FixedZone("x", 3600))
	for _, tc := range []struct{ payload, extra string }{
		{`{"metric":"temp","value":1.5}`, `,"metric":"temp","value":1.5`},
		{" { \"a\" : [1, {\"b\":2}] }\n", `,"a":[1,{"b":2}]`},
		{`{}`, ``},
		{`{ }`, ``},
	} {
		e := Event{EventID: id, StreamID: `dev"1\`, Version: 7, Type: AnomalyDetected, RecordedAt: at, Payload: []byte(tc.payload)}
		got := Envelope(nil, e)
		want := `{"event_id":"` + id.String() + `","type":"AnomalyDetected","device_id":"dev\"1\\","version":7,` +
			`"recorded_at":"2026-03-04T04:06:07.89Z"` + tc.extra + `}`
		assert.JSONEq(t, want, string(got), "payload %q", tc.payload)
		assert.True(t, json.Valid(got), "%s", got)
	}
}
