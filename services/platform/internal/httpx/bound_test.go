package httpx

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"platform/internal/contracts"
)

// waitsForever stands for a handler stuck on a stalled dependency: it
// returns only when its request's context ends, with the error pgx gives.
func waitsForever(w http.ResponseWriter, r *http.Request) {
	<-r.Context().Done()
	Failed(w, r, discard(), fmt.Errorf("ingest: %w", r.Context().Err()))
}

func TestBoundAnswers503WithRetryAfterWhenTheWaitRunsOut(t *testing.T) {
	h := Bound(50*time.Millisecond, http.HandlerFunc(waitsForever))
	rec := httptest.NewRecorder()
	started := time.Now()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/ingest/v1/telemetry", nil))
	assert.Less(t, time.Since(started), 5*time.Second, "gave up at its bound, not at the test's")
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Equal(t, RetryAfter, rec.Header().Get("Retry-After"))
	assert.Contains(t, rec.Body.String(), `"code":"unavailable"`)
	require.NoError(t, contracts.Default().Validate(contracts.ErrorBody, rec.Body.Bytes()))
}

func TestFailedAnswers500ForAnyOtherError(t *testing.T) {
	h := Bound(time.Minute, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Failed(w, r, discard(), errors.New("relation \"events\" does not exist"))
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	assert.Equal(t, http.StatusInternalServerError, rec.Code)
	assert.Empty(t, rec.Header().Get("Retry-After"))
	assert.Contains(t, rec.Body.String(), `"code":"internal"`)
}

func TestBoundLeavesACanceledRequestA500(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the client went away: not a stall
	rec := httptest.NewRecorder()
	Bound(time.Minute, http.HandlerFunc(waitsForever)).ServeHTTP(rec,
		httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx))
	assert.Equal(t, http.StatusInternalServerError, rec.Code)
}
