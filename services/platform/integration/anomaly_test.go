//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"platform/actions"
	"platform/detector"
	"platform/ingestion"
	ingclient "platform/ingestion/client"
	"platform/internal/contracts"
	"platform/internal/eventstore"
	"platform/internal/inference"
	"platform/internal/kafkax"
	"platform/internal/relay"
)

// inferencePython is the interpreter with the AI inference service
// installed: AI_INFERENCE_PYTHON, else the service's own venv (what
// `inv build` makes).
func inferencePython() string {
	if p := os.Getenv("AI_INFERENCE_PYTHON"); p != "" {
		return p
	}
	return "../../ai-inference/.venv/bin/python"
}

// startInference runs the real AI inference service (python -m
// ai_inference) on 127.0.0.1:port and waits for /healthz; stop kills it.
func startInference(t *testing.T, port int) (stop func()) {
	t.Helper()
	py, err := filepath.Abs(inferencePython())
	require.NoError(t, err)
	if _, err := os.Stat(py); err != nil {
		t.Fatalf("AI inference interpreter missing at %s: run `inv build` (builds services/ai-inference/.venv) or set AI_INFERENCE_PYTHON", py)
	}
	cmd := exec.Command(py, "-m", "ai_inference")
	cmd.Dir = t.TempDir() // no stray .env
	cmd.Env = append(os.Environ(), "AI_INFERENCE_HOST=127.0.0.1", "AI_INFERENCE_PORT="+strconv.Itoa(port), "AI_INFERENCE_WORKERS=1", "LOG_LEVEL=warn")
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop = func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	c := inference.New(inference.Config{BaseURL: fmt.Sprintf("http://127.0.0.1:%d", port), Timeout: time.Second, Retries: -1}, nil)
	deadline := time.After(30 * time.Second)
	for {
		if err := c.Ping(context.Background()); err == nil {
			return stop
		}
		select {
		case <-exited:
			t.Fatalf("AI inference service (%s -m ai_inference) exited before answering /healthz on port %d", py, port)
		case <-deadline:
			stop()
			t.Fatalf("AI inference service did not answer /healthz on 127.0.0.1:%d within 30s", port)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// lag is what group has not committed yet on topic.
func lag(t *testing.T, cl *kgo.Client, group, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	require.NoError(t, err)
	committed, err := adm.FetchOffsets(ctx, group)
	require.NoError(t, err)
	var n int64
	ends.Each(func(o kadm.ListedOffset) {
		c, ok := committed.Lookup(topic, o.Partition)
		at := int64(0)
		if ok && c.Err == nil && c.At >= 0 {
			at = c.At
		}
		n += o.Offset - at
	})
	return n
}

// The anomaly loop on real Kafka and the real AI inference service:
// telemetry -> relay -> telemetry topic -> detector -> scorer -> anomalies
// topic -> actions rules -> one cooldown command per anomaly. With the
// scorer stopped the detector stalls without committing past the unscored
// readings (lag > 0, readiness probe fails) and catches up when it returns:
// the second spike is found once, nothing duplicated.
func TestAnomalyLoopThroughKafkaAndInference(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	port := freeTCPPorts(t, 1)[0]
	stopInf := startInference(t, port)
	defer func() { stopInf() }()

	prod := producer(t)
	tel, anom := uniqueTopic(t, prod), uniqueTopic(t, prod)
	sfx := uuid.NewString()[:8]
	detGroup, actGroup := "it-det-"+sfx, "it-act-"+sfx
	device := "it-anom-" + sfx
	val := contracts.Default()

	events := eventstore.New(db.Pool)
	relay, err := eventstore.NewRelay(db.Pool, kafkax.Publisher{Client: prod}, eventstore.RelayConfig{Timing: relay.Timing{PollInterval: 100 * time.Millisecond}, Wake: events.Published()}, log)
	require.NoError(t, err)
	scorer := inference.New(inference.Config{BaseURL: fmt.Sprintf("http://127.0.0.1:%d", port), Timeout: 2 * time.Second, Retries: 1, Backoff: 50 * time.Millisecond}, val)
	det, err := detector.New(db.Pool, events, scorer, val, detector.Config{Window: 64, Topic: anom}, log)
	require.NoError(t, err)
	detCl, err := kafkax.NewGroupConsumer([]string{cfg.KafkaBroker()}, detGroup, tel, "it-detector")
	require.NoError(t, err)
	actCl, err := kafkax.NewGroupConsumer([]string{cfg.KafkaBroker()}, actGroup, anom, "it-actions")
	require.NoError(t, err)
	rules := actions.New(actions.Deps{Pool: db.Pool, Events: events, Validator: val, Log: log,
		Rules: map[string]string{"temperature": "cooldown"}}).AnomalyRules()

	done := make(chan struct{}, 3)
	go func() { _ = relay.Run(ctx); done <- struct{}{} }()
	go func() { detector.Run(ctx, detCl, prod, det); done <- struct{}{} }()
	go func() { actions.RunAnomalyConsumer(ctx, actCl, prod, rules); done <- struct{}{} }()
	defer func() {
		cancel()
		for range 3 {
			<-done
		}
		detCl.Close()
		actCl.Close()
	}()

	ing := ingestion.NewService(events, tel)
	t0 := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	sec := 0
	send := func(values ...float64) {
		rs := make([]ingclient.Reading, len(values))
		for i, v := range values {
			rs[i] = ingclient.Reading{EventID: uuid.New(), DeviceID: device, TS: t0.Add(time.Duration(sec) * time.Second), Metrics: map[string]float64{"temperature": v}}
			sec++
		}
		_, err := ing.Ingest(ctx, rs)
		require.NoError(t, err)
	}
	normal := func(n int) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = 20 + float64(i%3)*0.1
		}
		return out
	}
	count := func(q string) int {
		var n int
		require.NoError(t, db.Pool.QueryRow(ctx, q, device).Scan(&n))
		return n
	}
	const anomaliesQ = `SELECT count(*) FROM anomalies WHERE device_id = $1`
	const commandsQ = `SELECT count(*) FROM commands WHERE device_id = $1 AND name = 'cooldown'`

	// A value the scorer cannot take (issue 11: it used to stall the
	// detector for every device, for good): judged not scored, recorded.
	poisoned := "it-1e16-" + sfx
	_, err = ing.Ingest(ctx, []ingclient.Reading{{EventID: uuid.New(), DeviceID: poisoned, TS: t0, Metrics: map[string]float64{"temperature": 1e16}}})
	require.NoError(t, err)

	send(append(normal(40), 95)...)
	require.Eventually(t, func() bool { return count(anomaliesQ) == 1 && count(commandsQ) == 1 }, 30*time.Second, 100*time.Millisecond, "first spike -> one anomaly and one cooldown command")
	var reason string
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT reason FROM unscored_readings WHERE device_id = $1`, poisoned).Scan(&reason))
	assert.Contains(t, reason, "outside what the scorer accepts")
	require.Eventually(t, func() bool { return lag(t, prod, detGroup, tel) == 0 }, 15*time.Second, 100*time.Millisecond, "detector offsets committed")

	// Scorer down: the detector stalls and commits nothing past the new readings.
	stopInf()
	require.Error(t, scorer.Ping(ctx), "readiness probe fails while the scorer is down")
	send(append(normal(20), -60)...)
	require.Eventually(t, det.Stalled, 20*time.Second, 50*time.Millisecond, "detector stalls on the unreachable scorer")
	assert.Equal(t, int64(21), lag(t, prod, detGroup, tel), "no offset committed past the unscored readings")
	assert.Equal(t, 1, count(anomaliesQ))

	// Back up: caught up, the second spike found once.
	stopInf = startInference(t, port)
	require.Eventually(t, func() bool { return count(anomaliesQ) == 2 && count(commandsQ) == 2 }, 30*time.Second, 100*time.Millisecond, "second spike judged after the scorer returned")
	require.Eventually(t, func() bool { return lag(t, prod, detGroup, tel) == 0 && !det.Stalled() }, 15*time.Second, 100*time.Millisecond, "caught up")
	var score float64
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT score FROM anomalies WHERE device_id = $1 AND value = -60`, device).Scan(&score))
	assert.Less(t, score, -5.0, "the real model scored the drop")
	assert.Equal(t, 2, count(anomaliesQ), "no duplicate")
	assert.Equal(t, 2, count(commandsQ), "no duplicate")
}
