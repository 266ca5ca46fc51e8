// Package client is the published Go client of the ingestion server
// (schemas/openapi/ingestion.yaml).
package client

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"

	"platform/internal/apiclient"
)

// Reading is telemetry-reading.schema.json.
type Reading struct {
	EventID  uuid.UUID          `json:"event_id"`
	DeviceID string             `json:"device_id"`
	TS       time.Time          `json:"ts"`
	Metrics  map[string]float64 `json:"metrics"`
}

// Batch is telemetry-batch.schema.json.
type Batch struct {
	Readings []Reading `json:"readings"`
}

// IngestResponse is ingest-response.schema.json.
type IngestResponse struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
}

// Error is a non-2xx answer (error.schema.json).
type Error = apiclient.Error

// Health is health.schema.json.
type Health struct {
	Status    string            `json:"status"`
	Service   string            `json:"service"`
	Version   string            `json:"version"`
	Commit    string            `json:"commit"`
	BuildTime string            `json:"build_time"`
	Checks    map[string]string `json:"checks,omitempty"`
	// Tracing (GET /readyz): spans exported and dropped since start.
	Tracing *SpanCounts `json:"tracing,omitempty"`
}

// SpanCounts is health.schema.json's tracing.
type SpanCounts struct {
	Exported int64 `json:"exported"`
	Dropped  int64 `json:"dropped"`
}

// Client calls the ingestion server.
type Client struct{ c apiclient.Client }

// New returns a client for baseURL, e.g. http://127.0.0.1:8080 or the
// gateway http://127.0.0.1:8000. hc nil means a default client.
func New(baseURL string, hc *http.Client) *Client {
	return &Client{c: apiclient.New(baseURL, hc)}
}

// Ingest posts a batch of readings.
func (c *Client) Ingest(ctx context.Context, readings []Reading) (IngestResponse, error) {
	return c.IngestRaw(ctx, apiclient.JSON(Batch{Readings: readings}))
}

// IngestRaw posts body as is (for callers that already hold JSON).
func (c *Client) IngestRaw(ctx context.Context, body []byte) (IngestResponse, error) {
	var out IngestResponse
	_, err := c.c.Do(ctx, http.MethodPost, "/ingest/v1/telemetry", body, &out)
	return out, err
}

// Health calls GET /healthz.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	_, err := c.c.Do(ctx, http.MethodGet, "/healthz", nil, &h)
	return h, err
}

// Ready calls GET /readyz; a 503 is returned as *Error.
func (c *Client) Ready(ctx context.Context) (Health, error) {
	var h Health
	_, err := c.c.Do(ctx, http.MethodGet, "/readyz", nil, &h)
	return h, err
}
