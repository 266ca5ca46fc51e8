//go:build component

package actions_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"platform/actions"
	"platform/actions/client"
	"platform/internal/contracts"
	"platform/internal/kafkax"
)

// anomalyValue is an anomalies.v1 record value (anomaly-event.schema.json).
func anomalyValue(t *testing.T, id uuid.UUID, device, metric string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"event_id": id, "type": "AnomalyDetected", "device_id": device, "version": 7, "metric": metric,
		"ts": "2026-03-01T12:00:40Z", "value": 95.0, "score": 97.1, "reading_event_id": uuid.New(),
		"model": map[string]string{"name": "robust-zscore", "version": "1.0.0"}, "detected_at": "2026-03-01T12:00:40.5Z",
	})
	require.NoError(t, err)
	require.NoError(t, contracts.Default().Validate(contracts.AnomalyEvent, b))
	return b
}

// One command per anomaly with a rule, also when the anomaly is delivered
// again (in the same poll or a later one), and none for a metric without
// a rule; an invalid record is named as permanent (for the DLQ).
func TestAnomalyIssuesExactlyOneCommand(t *testing.T) {
	reset(t)
	ctx := context.Background()
	rules := srv.AnomalyRules() // temperature -> cooldown
	a1, a2 := uuid.New(), uuid.New()
	v1 := anomalyValue(t, a1, "dev-7", "temperature")
	poll := [][]byte{v1, v1, anomalyValue(t, a2, "dev-7", "humidity"), []byte(`{"type":"AnomalyDetected"}`), []byte(`nope`)}
	n, err := rules.Apply(ctx, poll)
	var perm *kafkax.PermanentError
	require.ErrorAs(t, err, &perm)
	assert.Equal(t, 3, perm.Index)
	assert.Equal(t, 1, n)
	n, err = rules.Apply(ctx, poll[:3])
	require.NoError(t, err)
	assert.Equal(t, 0, n, "the rest applied again: nothing issued twice")
	n, err = rules.Apply(ctx, [][]byte{v1})
	require.NoError(t, err)
	assert.Equal(t, 0, n, "redelivery")

	pub := &fakeMQTT{}
	r := relay(t, pub)
	sent, err := r.Drain(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, sent)
	n, err = rules.Apply(ctx, [][]byte{v1})
	require.NoError(t, err)
	assert.Equal(t, 0, n, "redelivery after the command was sent")
	_, err = r.Drain(ctx)
	require.NoError(t, err)

	got := pub.snapshot()
	require.Len(t, got, 1, "exactly one command crossed the MQTT boundary")
	assert.Equal(t, "devices/dev-7/commands", got[0].Topic)
	require.NoError(t, contracts.Default().Validate(contracts.CommandMessage, []byte(got[0].Payload)))
	var msg actions.CommandMessage
	require.NoError(t, json.Unmarshal([]byte(got[0].Payload), &msg))
	assert.Equal(t, actions.CommandIDFor(a1), msg.CommandID, "command_id derived from the anomaly's event id")
	assert.Equal(t, "cooldown", msg.Name)
	assert.JSONEq(t, `{"anomaly_event_id":"`+a1.String()+`","metric":"temperature","ts":"2026-03-01T12:00:40Z","value":95,"score":97.1}`, string(msg.Args))

	// Exactly as POST /actions/v1/devices/{id}/commands: visible through the API.
	cmd, err := cli.Get(ctx, actions.CommandIDFor(a1).String())
	require.NoError(t, err)
	assert.Equal(t, client.StatusSent, cmd.Status)
	assert.Equal(t, "dev-7", cmd.DeviceID)
	var n2 int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE type = 'CommandIssued'`).Scan(&n2))
	assert.Equal(t, 1, n2)
}

func TestCommandIDIsDeterministic(t *testing.T) {
	id := uuid.MustParse("5b0e3c1e-8a43-5d6b-9a0c-1f2e3d4c5b6a")
	assert.Equal(t, actions.CommandIDFor(id), actions.CommandIDFor(id))
	assert.NotEqual(t, actions.CommandIDFor(id), actions.CommandIDFor(uuid.New()))
	assert.Equal(t, uuid.Version(5), actions.CommandIDFor(id).Version())
}
