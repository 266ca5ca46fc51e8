//go:build component

package detector_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"platform/internal/inference"
)

// Issue 11: one reading of 1e16 (valid telemetry, outside what the scorer
// accepts) stopped detection for every device, for good. It is judged not
// scored, recorded with the reason, never sent; another device's spike in
// the same poll is found.
func TestValueOutsideTheScorersDomainIsNotScored(t *testing.T) {
	reset(t)
	fs := &fakeScorer{}
	d := newDetector(t, fs, 32)
	poison := reading{uuid.New(), 0, 1e16}
	poll := append(msgs(t, "dev-a", poison), msgs(t, "dev-b", append(series(1, 20), reading{uuid.New(), 21, 95})...)...)
	assert.Equal(t, 1, apply(t, d, poll), "dev-b's spike")
	assert.Equal(t, 1, count(t, `SELECT count(*) FROM anomalies WHERE device_id = 'dev-b'`))
	var reason string
	require.NoError(t, db.Pool.QueryRow(context.Background(), `SELECT reason FROM unscored_readings WHERE reading_event_id = $1 AND metric = 'temperature'`, poison.id).Scan(&reason))
	assert.Contains(t, reason, "value 1e+16 outside what the scorer accepts")
	for _, r := range fs.requests() {
		for _, p := range r.Points {
			assert.True(t, inference.ValueDomain.Contains(p.Value), "sent %g", p.Value)
		}
	}

	// Redelivered: nothing recorded twice.
	apply(t, d, poll)
	assert.Equal(t, 1, count(t, `SELECT count(*) FROM unscored_readings`))
}

// After a restart the window is rebuilt from the readings projection: a
// stored 1e16 is no reference point, and the next readings are scored.
func TestRebuiltWindowLeavesOutValuesOutsideTheDomain(t *testing.T) {
	reset(t)
	ctx := context.Background()
	rs := append(series(0, 20), reading{uuid.New(), 20, 1e16})
	for _, r := range rs {
		_, err := db.Pool.Exec(ctx, `INSERT INTO readings (device_id, ts, metric, value, event_id) VALUES ('dev-a', $1, 'temperature', $2, $3)`,
			t0.Add(secs(r.sec)), r.value, r.id)
		require.NoError(t, err)
	}
	fs := &fakeScorer{}
	d := newDetector(t, fs, 32) // a fresh start: no window in memory
	assert.Equal(t, 1, apply(t, d, msgs(t, "dev-a", reading{uuid.New(), 21, 95})))
	reqs := fs.requests()
	require.Len(t, reqs, 1)
	assert.Len(t, reqs[0].Points, 21, "20 reference readings without the 1e16, then the new one")
}

func secs(n int) time.Duration { return time.Duration(n) * time.Second }
