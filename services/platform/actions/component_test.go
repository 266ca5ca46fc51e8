//go:build component

package actions_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"platform/actions"
	"platform/actions/client"
	"platform/internal/contracts"
	"platform/internal/eventstore"
	"platform/internal/outbox"
	"platform/internal/testdb"
	"platform/internal/testserver"
)

var (
	baseURL string
	db      *testdb.DB
	cli     *client.Client
	srv     *actions.Server
	svc     *actions.Service
	log     = slog.New(slog.DiscardHandler)
)

func TestMain(m *testing.M) {
	testserver.Main(m, "actions", log, func(d *testdb.DB) http.Handler {
		db = d
		srv = actions.New(actions.Deps{Pool: db.Pool, Events: eventstore.New(db.Pool), Validator: contracts.Default(), Log: log,
			Rules: map[string]string{"temperature": "cooldown"}})
		svc = srv.Service()
		return srv.Handler(nil)
	}, func(url string) { baseURL, cli = url, client.New(url, nil) })
}

func reset(t *testing.T) {
	t.Helper()
	require.NoError(t, db.Truncate(context.Background(), "events", "outbox", "commands", "processed_messages"))
}

type published struct{ Topic, Payload string }

// fakeMQTT records what crosses the MQTT boundary; fail makes the next
// publish fail.
type fakeMQTT struct {
	mu   sync.Mutex
	got  []published
	fail bool
}

func (f *fakeMQTT) Publish(_ context.Context, topic string, payload []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		f.fail = false
		return errors.New("broker unavailable")
	}
	f.got = append(f.got, published{topic, string(payload)})
	return nil
}

func (f *fakeMQTT) snapshot() []published {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]published(nil), f.got...)
}

func relay(t *testing.T, pub *fakeMQTT) *outbox.Relay {
	t.Helper()
	r, err := srv.CommandRelay(pub)
	require.NoError(t, err)
	t.Cleanup(r.Close) // the next test's relay leads the sink
	return r
}

// issuePing issues a new "ping" command to dev-1 and returns its request.
func issuePing(t *testing.T) client.CommandRequest {
	t.Helper()
	req := client.CommandRequest{CommandID: uuid.New(), Name: "ping"}
	_, _, err := cli.Issue(context.Background(), "dev-1", req)
	require.NoError(t, err)
	return req
}

func TestIssueSendAcknowledge(t *testing.T) {
	reset(t)
	ctx := context.Background()
	req := client.CommandRequest{CommandID: uuid.New(), Name: "reboot", Args: map[string]any{"delay_s": 5}}
	cmd, created, err := cli.Issue(ctx, "dev-1", req)
	require.NoError(t, err)
	assert.True(t, created)
	assert.Equal(t, client.StatusIssued, cmd.Status)
	assert.Equal(t, "dev-1", cmd.DeviceID)
	assert.JSONEq(t, `{"delay_s":5}`, string(cmd.Args))

	pub := &fakeMQTT{}
	n, err := relay(t, pub).Drain(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	got := pub.snapshot()
	require.Len(t, got, 1)
	assert.Equal(t, "devices/dev-1/commands", got[0].Topic)
	require.NoError(t, contracts.Default().Validate(contracts.CommandMessage, []byte(got[0].Payload)))
	assert.Contains(t, got[0].Payload, req.CommandID.String())

	cmd, err = cli.Get(ctx, req.CommandID.String())
	require.NoError(t, err)
	assert.Equal(t, client.StatusSent, cmd.Status)
	require.NotNil(t, cmd.SentAt)

	resp, err := http.Get(baseURL + "/actions/v1/commands/" + req.CommandID.String())
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, contracts.Default().Validate(contracts.Command, body), string(body))

	ack := fmt.Sprintf(`{"command_id":%q,"status":"ok","result":"done"}`, req.CommandID)
	require.NoError(t, svc.Acknowledge(ctx, "dev-1", []byte(ack)))
	require.NoError(t, svc.Acknowledge(ctx, "dev-1", []byte(ack)), "a repeated ack is a no-op")
	cmd, err = cli.Get(ctx, req.CommandID.String())
	require.NoError(t, err)
	assert.Equal(t, client.StatusAcknowledged, cmd.Status)
	require.NotNil(t, cmd.AcknowledgedAt)
	require.NotNil(t, cmd.Result)
	assert.Equal(t, "done", *cmd.Result)

	var types []string
	rows, err := db.Pool.Query(ctx, "SELECT type FROM events WHERE stream_id = 'dev-1' ORDER BY version")
	require.NoError(t, err)
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		types = append(types, s)
	}
	assert.Equal(t, []string{"CommandIssued", "CommandAcknowledged"}, types)
}

func TestDuplicateCommandIsNotSentTwice(t *testing.T) {
	reset(t)
	ctx := context.Background()
	req := client.CommandRequest{CommandID: uuid.New(), Name: "ping"}
	first, created, err := cli.Issue(ctx, "dev-1", req)
	require.NoError(t, err)
	require.True(t, created)
	again, created, err := cli.Issue(ctx, "dev-1", req)
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, first.CommandID, again.CommandID)
	assert.True(t, first.IssuedAt.Equal(again.IssuedAt))

	pub := &fakeMQTT{}
	_, err = relay(t, pub).Drain(ctx)
	require.NoError(t, err)
	assert.Len(t, pub.snapshot(), 1)

	_, _, err = cli.Issue(ctx, "dev-2", req)
	var ae *client.Error
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 409, ae.Status)
}

func TestFailedPublishKeepsTheCommandQueued(t *testing.T) {
	reset(t)
	ctx := context.Background()
	req := issuePing(t)
	pub := &fakeMQTT{fail: true}
	r := relay(t, pub)
	_, err := r.Drain(ctx)
	require.Error(t, err)
	cmd, err := cli.Get(ctx, req.CommandID.String())
	require.NoError(t, err)
	assert.Equal(t, client.StatusIssued, cmd.Status)

	n, err := r.Drain(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Len(t, pub.snapshot(), 1)
	cmd, err = cli.Get(ctx, req.CommandID.String())
	require.NoError(t, err)
	assert.Equal(t, client.StatusSent, cmd.Status)
}

func TestErrorAckMarksFailed(t *testing.T) {
	reset(t)
	ctx := context.Background()
	req := issuePing(t)
	require.NoError(t, svc.Acknowledge(ctx, "dev-1", []byte(fmt.Sprintf(`{"command_id":%q,"status":"error","result":"busy"}`, req.CommandID))))
	cmd, err := cli.Get(ctx, req.CommandID.String())
	require.NoError(t, err)
	assert.Equal(t, client.StatusFailed, cmd.Status)
	assert.NotNil(t, cmd.FailedAt)
}

func TestBadAcksAreRejected(t *testing.T) {
	reset(t)
	ctx := context.Background()
	require.Error(t, svc.Acknowledge(ctx, "dev-1", []byte(`not json`)))
	require.Error(t, svc.Acknowledge(ctx, "dev-1", []byte(`{"command_id":"x"}`)))
	err := svc.Acknowledge(ctx, "dev-1", []byte(fmt.Sprintf(`{"command_id":%q}`, uuid.New())))
	require.ErrorIs(t, err, actions.ErrNotFound)
	var n int
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT count(*) FROM processed_messages").Scan(&n))
	assert.Equal(t, 0, n, "an unknown command's ack is not remembered")
}

func TestBadRequests(t *testing.T) {
	reset(t)
	ctx := context.Background()
	check := func(err error, status int, code string) {
		t.Helper()
		testserver.APIError(t, err, status, code)
	}
	_, _, err := cli.IssueRaw(ctx, "dev-1", []byte(`{`))
	check(err, 400, "malformed_json")
	_, _, err = cli.IssueRaw(ctx, "dev-1", []byte(`{"name":"reboot"}`))
	check(err, 400, "invalid_body")
	_, _, err = cli.Issue(ctx, "bad+id", client.CommandRequest{CommandID: uuid.New(), Name: "x"})
	check(err, 400, "invalid_parameter")
	_, err = cli.Get(ctx, "not-a-uuid")
	check(err, 400, "invalid_parameter")
	_, err = cli.Get(ctx, uuid.NewString())
	check(err, 404, "not_found")

	resp, err := http.Post(baseURL+"/actions/v1/devices/dev-1/commands", "text/plain", strings.NewReader(`{"command_id":"`+uuid.NewString()+`","name":"reboot"}`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode, "a body that is not JSON by its type")
}
