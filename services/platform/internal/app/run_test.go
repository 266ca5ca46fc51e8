package app

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"platform/internal/mqttx"
)

// A worker that fails for good (a relay's Run returning its error) stops
// the whole app: the other workers are stopped, and run returns the error
// named after the worker, which main turns into one line and exit code 1.
func TestAWorkerThatFailsForGoodStopsTheApp(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	// Nothing listens on port 1: the clients connect to nothing, and their
	// close and flush return at once.
	mq := mqttx.Connect(mqttx.Options{Broker: "tcp://127.0.0.1:1", ClientID: "run-test", Log: log}, nil)
	producer, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"))
	require.NoError(t, err)
	defer producer.Close()
	stopped := make(chan struct{})
	a := &application{mq: mq, infra: &infrastructure{producer: producer}, workers: []worker{
		{"event relay", func(context.Context) error { return errors.New(`relation "relay_cursors" does not exist`) }},
		{"query projections", func(ctx context.Context) error { <-ctx.Done(); close(stopped); return nil }},
	}}

	done := make(chan error, 1)
	go func() { done <- run(context.Background(), 5*time.Second, nil, a, log) }()
	select {
	case err := <-done:
		require.Error(t, err)
		assert.Equal(t, `event relay: relation "relay_cursors" does not exist`, err.Error())
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return within 10 s of a worker's failure")
	}
	select {
	case <-stopped:
	default:
		t.Error("the other worker was not stopped")
	}
}
