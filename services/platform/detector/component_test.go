//go:build component

package detector_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"platform/detector"
	"platform/internal/contracts"
	"platform/internal/eventstore"
	"platform/internal/inference"
	"platform/internal/kafkax"
	"platform/internal/testdb"
)

var (
	db  *testdb.DB
	log = slog.New(slog.DiscardHandler)
	t0  = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

func TestMain(m *testing.M) {
	testdb.Run(m, "detector", &db)
}

func reset(t *testing.T) {
	t.Helper()
	require.NoError(t, db.Truncate(context.Background(), "events", "relay_cursors", "readings", "processed_messages", "anomalies", "unscored_readings"))
}

// fakeScorer records every window it is asked to score, in order. Its
// model: a point is an anomaly when at least minHistory points precede it
// and it is more than 10 away from 20. down makes it fail as an
// unreachable service would.
type fakeScorer struct {
	mu   sync.Mutex
	got  []inference.Request
	down bool
}

const minHistory = 16

func (f *fakeScorer) Score(_ context.Context, req inference.Request) (inference.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return inference.Result{}, fmt.Errorf("%w: connection refused", inference.ErrUnavailable)
	}
	f.got = append(f.got, req)
	res := inference.Result{DeviceID: req.DeviceID, Metric: req.Metric, Scores: make([]float64, len(req.Points)), Model: inference.Model{Name: "fake", Version: "1"}}
	for i, p := range req.Points {
		if i >= minHistory && math.Abs(p.Value-20) > 10 {
			res.Scores[i] = p.Value - 20
			res.Anomalies = append(res.Anomalies, inference.Anomaly{Index: i, TS: p.TS, Value: p.Value, Score: p.Value - 20})
		}
	}
	return res, nil
}

func (f *fakeScorer) setDown(v bool) { f.mu.Lock(); f.down = v; f.mu.Unlock() }

func (f *fakeScorer) requests() []inference.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]inference.Request(nil), f.got...)
}

// values of a request, for "what was sent" assertions.
func values(r inference.Request) []float64 {
	out := make([]float64, len(r.Points))
	for i, p := range r.Points {
		out[i] = p.Value
	}
	return out
}

type reading struct {
	id    uuid.UUID
	sec   int
	value float64
}

// series makes n readings of 20, 20.1, 20, ... at seconds from..from+n-1.
func series(from, n int) []reading {
	out := make([]reading, n)
	for i := range n {
		out[i] = reading{uuid.New(), from + i, 20 + float64(i%2)/10}
	}
	return out
}

// msgs encodes readings as telemetry.v1 values (telemetry-event.schema.json).
func msgs(t *testing.T, device string, rs ...reading) []detector.Message {
	t.Helper()
	out := make([]detector.Message, len(rs))
	for i, r := range rs {
		b, err := json.Marshal(map[string]any{
			"event_id": r.id, "type": "TelemetryReceived", "device_id": device, "version": r.sec + 1,
			"ts": t0.Add(time.Duration(r.sec) * time.Second), "metrics": map[string]float64{"temperature": r.value},
			"recorded_at": t0,
		})
		require.NoError(t, err)
		require.NoError(t, contracts.Default().Validate(contracts.TelemetryEvent, b))
		out[i] = detector.Message{Value: b, Offset: int64(r.sec)}
	}
	return out
}

func newDetector(t *testing.T, s detector.Scorer, window int) *detector.Detector {
	t.Helper()
	d, err := detector.New(db.Pool, eventstore.New(db.Pool), s, contracts.Default(), detector.Config{Window: window, Topic: "anomalies.v1"}, log)
	require.NoError(t, err)
	return d
}

// published is what the event relay sends to the broker since the reset.
func published(t *testing.T) []eventstore.Message {
	t.Helper()
	msgs, err := db.Published(context.Background())
	require.NoError(t, err)
	return msgs
}

func count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, db.Pool.QueryRow(context.Background(), q, args...).Scan(&n))
	return n
}

func apply(t *testing.T, d *detector.Detector, m []detector.Message) int {
	t.Helper()
	n, err := d.Apply(context.Background(), m)
	require.NoError(t, err)
	return n
}

func TestSpikeYieldsOneAnomalyEventOnTheAnomaliesTopic(t *testing.T) {
	reset(t)
	fs := &fakeScorer{}
	d := newDetector(t, fs, 32)
	spike := reading{uuid.New(), 40, 95}
	in := msgs(t, "dev-1", append(series(0, 40), spike)...)
	assert.Equal(t, 1, apply(t, d, in))

	reqs := fs.requests()
	require.Len(t, reqs, 1, "one window per device+metric per poll")
	assert.Equal(t, "dev-1", reqs[0].DeviceID)
	assert.Equal(t, "temperature", reqs[0].Metric)
	require.Len(t, reqs[0].Points, 41, "all readings of the poll, oldest first")
	assert.Equal(t, 95.0, reqs[0].Points[40].Value)
	for i := 1; i < len(reqs[0].Points); i++ {
		assert.True(t, reqs[0].Points[i].TS.After(reqs[0].Points[i-1].TS))
	}

	out := published(t)
	require.Len(t, out, 1)
	topic, key, payload := out[0].Topic, out[0].Key, out[0].Value
	assert.Equal(t, "anomalies.v1", topic)
	assert.Equal(t, "dev-1", key)
	require.NoError(t, contracts.Default().Validate(contracts.AnomalyEvent, payload))
	var ev detector.Event
	require.NoError(t, json.Unmarshal(payload, &ev))
	assert.Equal(t, detector.AnomalyID(spike.id, "temperature"), ev.EventID)
	assert.Equal(t, spike.id, ev.ReadingEventID)
	assert.Equal(t, 95.0, ev.Value)
	assert.True(t, ev.TS.Equal(t0.Add(40*time.Second)))
	assert.Equal(t, int64(1), ev.Version, "first event of the dev-1 stream in this database")
	assert.Equal(t, 1, count(t, `SELECT count(*) FROM events WHERE type = 'AnomalyDetected' AND event_id = $1`, ev.EventID))
	assert.Equal(t, 1, count(t, `SELECT count(*) FROM anomalies WHERE event_id = $1 AND score = 75`, ev.EventID))

	// Redelivery of the whole poll: nothing new is judged, nothing stored.
	assert.Equal(t, 0, apply(t, d, in))
	assert.Len(t, fs.requests(), 1, "redelivered readings are not scored again")
	// Even a fresh detector (restart) that scores again stores nothing twice.
	d2 := newDetector(t, fs, 32)
	assert.Equal(t, 0, apply(t, d2, in))
	assert.Equal(t, 1, count(t, `SELECT count(*) FROM anomalies`))
	assert.Len(t, published(t), 1)
}

// The window is kept across polls and bounded: each request carries at
// most Window reference readings before the new ones.
func TestWindowAcrossPolls(t *testing.T) {
	reset(t)
	fs := &fakeScorer{}
	d := newDetector(t, fs, 24)
	all := series(0, 40)
	assert.Equal(t, 0, apply(t, d, msgs(t, "dev-2", all[:20]...)))
	assert.Equal(t, 0, apply(t, d, msgs(t, "dev-2", all[20:]...)))
	spike := reading{uuid.New(), 40, -50}
	assert.Equal(t, 1, apply(t, d, msgs(t, "dev-2", spike)))

	reqs := fs.requests()
	require.Len(t, reqs, 3)
	assert.Len(t, reqs[0].Points, 20)
	assert.Len(t, reqs[1].Points, 40, "20 reference + 20 new")
	assert.True(t, reqs[1].Points[0].TS.Equal(t0))
	require.Len(t, reqs[2].Points, 25, "24 reference + the spike")
	assert.True(t, reqs[2].Points[0].TS.Equal(t0.Add(16*time.Second)), "the newest 24 readings")
	assert.Equal(t, -50.0, reqs[2].Points[24].Value)
}

// A scorer that is down makes Apply fail without writing anything or
// moving the window; when it returns the same poll is judged as if
// nothing happened: no reading skipped, no anomaly duplicated.
func TestScorerDownThenCatchesUp(t *testing.T) {
	reset(t)
	fs := &fakeScorer{}
	d := newDetector(t, fs, 32)
	assert.Equal(t, 0, apply(t, d, msgs(t, "dev-3", series(0, 30)...)))
	spike := reading{uuid.New(), 30, 80}
	after := series(31, 3)
	poll := msgs(t, "dev-3", append([]reading{spike}, after...)...)

	fs.setDown(true)
	for range 3 {
		_, err := d.Apply(context.Background(), poll)
		require.ErrorIs(t, err, inference.ErrUnavailable)
	}
	assert.Equal(t, 0, count(t, `SELECT count(*) FROM anomalies`))
	assert.Equal(t, 30, count(t, `SELECT count(*) FROM processed_messages`), "unscored readings are not marked processed")

	fs.setDown(false)
	assert.Equal(t, 1, apply(t, d, poll))
	reqs := fs.requests()
	require.Len(t, reqs, 2)
	assert.Len(t, reqs[1].Points, 34, "30 reference + the 4 readings that waited: the window did not move while down")
	assert.Equal(t, 80.0, reqs[1].Points[30].Value)
	assert.Equal(t, 0, apply(t, d, poll), "redelivery after the commit")
	assert.Equal(t, 1, count(t, `SELECT count(*) FROM anomalies`))
}

// After a restart the window is rebuilt from the readings projection, so
// a spike that is the first reading seen is still judged.
func TestRestartRebuildsWindowFromReadings(t *testing.T) {
	reset(t)
	ctx := context.Background()
	for _, r := range series(0, 40) {
		_, err := db.Pool.Exec(ctx, `INSERT INTO readings (device_id, ts, metric, value, event_id) VALUES ('dev-4', $1, 'temperature', $2, $3)`,
			t0.Add(time.Duration(r.sec)*time.Second), r.value, r.id)
		require.NoError(t, err)
	}
	// A reading at the spike's ts already projected must not be used as history.
	_, err := db.Pool.Exec(ctx, `INSERT INTO readings (device_id, ts, metric, value, event_id) VALUES ('dev-4', $1, 'temperature', 95, $2)`, t0.Add(40*time.Second), uuid.New())
	require.NoError(t, err)
	fs := &fakeScorer{}
	d := newDetector(t, fs, 32)
	assert.Equal(t, 1, apply(t, d, msgs(t, "dev-4", reading{uuid.New(), 40, 95})))
	reqs := fs.requests()
	require.Len(t, reqs, 1)
	require.Len(t, reqs[0].Points, 33, "32 readings before the spike, then the spike")
	assert.True(t, reqs[0].Points[0].TS.Equal(t0.Add(8*time.Second)))
	assert.True(t, reqs[0].Points[31].TS.Equal(t0.Add(39*time.Second)))
}

// Devices and metrics keep their own windows; a late reading (ts not after
// the window's last) is not judged.
func TestWindowsPerDeviceAndLateReadings(t *testing.T) {
	reset(t)
	fs := &fakeScorer{}
	d := newDetector(t, fs, 32)
	in := append(msgs(t, "dev-a", series(0, 20)...), msgs(t, "dev-b", series(0, 20)...)...)
	assert.Equal(t, 0, apply(t, d, in))
	late := reading{uuid.New(), 5, 99}
	assert.Equal(t, 0, apply(t, d, msgs(t, "dev-a", late)))
	assert.Equal(t, 1, apply(t, d, msgs(t, "dev-b", reading{uuid.New(), 20, 99})))
	reqs := fs.requests()
	require.Len(t, reqs, 3, "dev-a, dev-b, then dev-b's spike: the late reading is not sent")
	assert.Equal(t, "dev-a", reqs[0].DeviceID)
	assert.Equal(t, "dev-b", reqs[1].DeviceID)
	assert.Equal(t, "dev-b", reqs[2].DeviceID)
	assert.Equal(t, 99.0, values(reqs[2])[20])
}

// A record that is not a telemetry event is permanent (for the DLQ), named
// by its index; nothing of the poll is judged.
func TestInvalidTelemetryIsPermanent(t *testing.T) {
	reset(t)
	fs := &fakeScorer{}
	d := newDetector(t, fs, 32)
	good := msgs(t, "dev-a", series(0, 1)...)
	n, err := d.Apply(context.Background(), []detector.Message{good[0], {Value: []byte(`{"event_id":"x"}`)}, {Value: []byte(`nope`)}})
	var perm *kafkax.PermanentError
	require.ErrorAs(t, err, &perm)
	assert.Equal(t, 1, perm.Index)
	assert.Zero(t, n)
	assert.Empty(t, fs.requests())
}

// More readings than one request may carry are scored in chunks, each
// with its own reference readings, none over contracts.MaxScorePoints.
func TestLargePollIsScoredInChunks(t *testing.T) {
	reset(t)
	fs := &fakeScorer{}
	d := newDetector(t, fs, 100)
	rs := append(series(0, 4099), reading{uuid.New(), 4099, 500})
	assert.Equal(t, 1, apply(t, d, msgs(t, "dev-big", rs...)))
	reqs := fs.requests()
	require.Len(t, reqs, 2)
	assert.Len(t, reqs[0].Points, contracts.MaxScorePoints-100)
	assert.Len(t, reqs[1].Points, 100+4100-(contracts.MaxScorePoints-100), "100 reference + the rest")
	assert.True(t, reqs[1].Points[0].TS.Equal(t0.Add(time.Duration(contracts.MaxScorePoints-200)*time.Second)))
}
