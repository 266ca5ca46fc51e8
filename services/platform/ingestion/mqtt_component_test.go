//go:build component

package ingestion_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"platform/ingestion"
	"platform/internal/contracts"
	"platform/internal/eventstore"
	"platform/internal/mqttx"
)

type fakeDLQ struct {
	mu   sync.Mutex
	got  []ingestion.DeadLetter
	fail bool
}

func (f *fakeDLQ) PublishDeadLetter(_ context.Context, _ string, dl ingestion.DeadLetter) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errors.New("kafka down")
	}
	f.got = append(f.got, dl)
	return nil
}

func mqttPayload(t *testing.T, v map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

func TestMQTTTelemetry(t *testing.T) {
	reset(t)
	ctx := context.Background()
	dlq := &fakeDLQ{}
	h := ingestion.New(ingestion.Deps{Events: eventstore.New(db.Pool), Topic: "telemetry.v1", DeadLetters: dlq, Validator: contracts.Default(), Log: log}).Subscription().Handler
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	good := mqttx.Message{Topic: "devices/dev-m/telemetry", Payload: mqttPayload(t, map[string]any{"event_id": uuid.NewString(), "ts": ts, "metrics": map[string]any{"t": 1}})}
	withDevice := mqttx.Message{Topic: "devices/dev-m/telemetry", Payload: mqttPayload(t, map[string]any{"event_id": uuid.NewString(), "device_id": "dev-m", "ts": ts, "metrics": map[string]any{"t": 2}})}
	malformed := mqttx.Message{Topic: "devices/dev-m/telemetry", Payload: []byte(`{"event_id":`)}
	mismatch := mqttx.Message{Topic: "devices/dev-m/telemetry", Payload: mqttPayload(t, map[string]any{"event_id": uuid.NewString(), "device_id": "other", "ts": ts, "metrics": map[string]any{"t": 1}})}
	schemaBad := mqttx.Message{Topic: "devices/dev-m/telemetry", Payload: mqttPayload(t, map[string]any{"event_id": uuid.NewString(), "ts": ts, "metrics": map[string]any{}})}

	require.NoError(t, h(ctx, []mqttx.Message{good, malformed, withDevice, mismatch, schemaBad, good}))

	assert.Equal(t, 2, db.Count(t, "events"), "valid readings stored once")
	require.Len(t, dlq.got, 3)
	raw, err := base64.StdEncoding.DecodeString(dlq.got[0].PayloadBase64)
	require.NoError(t, err)
	assert.Equal(t, malformed.Payload, raw, "the original bytes")
	assert.Equal(t, "malformed JSON", dlq.got[0].Reason)
	assert.Equal(t, "device_id differs from the topic", dlq.got[1].Reason)
	for _, dl := range dlq.got {
		b, _ := json.Marshal(dl)
		require.NoError(t, contracts.Default().Validate(contracts.DeadLetter, b))
	}

	dlq.fail = true
	require.Error(t, h(ctx, []mqttx.Message{malformed}), "not acked while the DLQ is down")
}
