//go:build component

package actions_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"platform/actions/client"
	"platform/internal/contracts"
	"platform/internal/tracing"
)

// A command issued under a trace carries its traceparent in the MQTT
// message (command-message.schema.json); an ack's traceparent that is not
// one (any JSON value) never refuses the ack.
func TestCommandCarriesTraceparentAndABadEchoStillAcks(t *testing.T) {
	reset(t)
	const issuing = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	ctx := tracing.Under(context.Background(), tracing.Parse(issuing))
	req := client.CommandRequest{CommandID: uuid.New(), Name: "reboot"}
	_, created, err := svc.Issue(ctx, "dev-tr", req)
	require.NoError(t, err)
	require.True(t, created)
	var stored string
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT trace_context FROM events WHERE type = 'CommandIssued' AND stream_id = 'dev-tr'`).Scan(&stored))
	assert.Equal(t, issuing, stored, "the CommandIssued event keeps the issuing trace")

	pub := &fakeMQTT{}
	_, err = relay(t, pub).Drain(context.Background())
	require.NoError(t, err)
	got := pub.snapshot()
	require.Len(t, got, 1)
	require.NoError(t, contracts.Default().Validate(contracts.CommandMessage, []byte(got[0].Payload)))
	var msg struct {
		Traceparent string `json:"traceparent"`
	}
	require.NoError(t, json.Unmarshal([]byte(got[0].Payload), &msg))
	assert.Equal(t, issuing, msg.Traceparent)

	for i, echo := range []string{`42`, `"00-zz-01"`} {
		id := req.CommandID
		if i > 0 {
			id = uuid.New()
			_, _, err := svc.Issue(context.Background(), "dev-tr", client.CommandRequest{CommandID: id, Name: "reboot"})
			require.NoError(t, err)
		}
		require.NoError(t, svc.Acknowledge(context.Background(), "dev-tr", []byte(fmt.Sprintf(`{"command_id":%q,"traceparent":%s}`, id, echo))), echo)
		cmd, err := cli.Get(context.Background(), id.String())
		require.NoError(t, err)
		assert.Equal(t, client.StatusAcknowledged, cmd.Status, echo)
	}
}
