package httpx

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"platform/internal/contracts"
)

func TestHealthAndReadiness(t *testing.T) {
	mux := http.NewServeMux()
	HandleHealth(mux, "query", map[string]Check{
		"postgres": func(context.Context) error { return nil },
		"kafka":    func(context.Context) error { return errors.New("connection refused") },
	})
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 503} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		assert.Equal(t, want, rec.Code, path)
		body, _ := io.ReadAll(rec.Body)
		require.NoError(t, contracts.Default().Validate(contracts.Health, body), path)
		if path == "/readyz" {
			assert.Contains(t, string(body), `"kafka":"connection refused"`)
			assert.Contains(t, string(body), `"postgres":"ok"`)
		}
	}
}

func TestErrorBodyMatchesSchema(t *testing.T) {
	rec := httptest.NewRecorder()
	i := 2
	WriteError(rec, 400, CodeInvalidBody, "bad", Detail{Index: &i, Field: "/readings/2/ts", Message: "missing"})
	require.NoError(t, contracts.Default().Validate(contracts.ErrorBody, rec.Body.Bytes()))
	rec = httptest.NewRecorder()
	WriteError(rec, 404, CodeNotFound, "nope")
	require.NoError(t, contracts.Default().Validate(contracts.ErrorBody, rec.Body.Bytes()))
}

func TestRecover(t *testing.T) {
	h := Recover(discard(), http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	assert.Equal(t, 500, rec.Code)
}
