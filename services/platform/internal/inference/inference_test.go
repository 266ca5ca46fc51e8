package inference

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"platform/internal/contracts"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func window(n int) Request {
	r := Request{DeviceID: "dev-1", Metric: "temperature"}
	for i := range n {
		r.Points = append(r.Points, Point{TS: t0.Add(time.Duration(i) * time.Second), Value: 20})
	}
	return r
}

func TestScoreValidatesAndDecodes(t *testing.T) {
	var got Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "/v1/score", r.URL.Path)
		b, _ := io.ReadAll(r.Body)
		assert.NoError(t, contracts.Default().Validate(contracts.ScoreRequest, b), "what crosses the wire matches the schema")
		require.NoError(t, json.Unmarshal(b, &got))
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"device_id":"dev-1","metric":"temperature","scores":[0,0,9.5],
			"anomalies":[{"index":2,"ts":"2026-03-01T12:00:02Z","value":20,"score":9.5}],
			"model":{"name":"robust-zscore","version":"1.0.0"}}`)
	}))
	defer srv.Close()
	c := New(Config{BaseURL: srv.URL}, nil)
	res, err := c.Score(context.Background(), window(3))
	require.NoError(t, err)
	assert.Len(t, got.Points, 3)
	require.Len(t, res.Anomalies, 1)
	assert.Equal(t, 2, res.Anomalies[0].Index)
	assert.Equal(t, "robust-zscore", res.Model.Name)
}

func TestInvalidRequestIsNotSent(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	defer srv.Close()
	c := New(Config{BaseURL: srv.URL}, nil)
	_, err := c.Score(context.Background(), Request{DeviceID: "dev-1", Metric: "temperature"})
	var ie *contracts.InvalidError
	require.ErrorAs(t, err, &ie)
	assert.Zero(t, calls.Load())
}

func TestAnswers(t *testing.T) {
	cases := map[string]struct {
		status   int
		body     string
		rejected bool
	}{
		"422":           {422, `{"detail":[{"type":"too_short","loc":["body","points"],"msg":"x","input":[]}]}`, true},
		"500":           {500, `boom`, false},
		"invalid body":  {200, `{"scores":"nope"}`, false},
		"wrong length":  {200, `{"device_id":"d","metric":"m","scores":[0],"anomalies":[],"model":{"name":"n","version":"v"}}`, false},
		"index too big": {200, `{"device_id":"d","metric":"m","scores":[0,0],"anomalies":[{"index":5,"ts":"2026-03-01T12:00:02Z","value":1,"score":9}],"model":{"name":"n","version":"v"}}`, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			_, err := New(Config{BaseURL: srv.URL}, nil).Score(context.Background(), window(2))
			require.Error(t, err)
			var re *RejectedError
			assert.Equal(t, tc.rejected, errors.As(err, &re), err.Error())
			assert.Equal(t, !tc.rejected, errors.Is(err, ErrUnavailable), err.Error())
			if tc.rejected {
				assert.Contains(t, err.Error(), "too_short")
			}
		})
	}
}

// A refused connection is retried (the request never left); a timeout
// after sending is not.
func TestRetriesConnectionErrorsOnly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	start := time.Now()
	c := New(Config{BaseURL: "http://" + addr, Retries: 2, Backoff: 20 * time.Millisecond}, nil)
	err = c.Ping(context.Background())
	require.ErrorIs(t, err, ErrUnavailable)
	assert.GreaterOrEqual(t, time.Since(start), 60*time.Millisecond, "two retries: 20 ms + 40 ms")

	var calls atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c = New(Config{BaseURL: srv.URL, Timeout: 100 * time.Millisecond, Retries: 3}, nil)
	_, err = c.Score(context.Background(), window(2))
	require.ErrorIs(t, err, ErrUnavailable)
	assert.Equal(t, int32(1), calls.Load(), "a timeout is not retried")
}

func TestValueDomainIsTheSchemas(t *testing.T) {
	assert.Equal(t, Domain{Min: -1e15, Max: 1e15}, ValueDomain)
	assert.True(t, ValueDomain.Contains(1e15))
	assert.False(t, ValueDomain.Contains(1e16))
	assert.False(t, ValueDomain.Contains(math.NaN()))
}
