// Package client is the published Go client of the query server
// (schemas/openapi/query.yaml).
package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"

	"platform/internal/apiclient"
)

// Error is a non-2xx answer (error.schema.json).
type Error = apiclient.Error

// Device is an item of device-list.schema.json.
type Device struct {
	DeviceID string    `json:"device_id"`
	LastTS   time.Time `json:"last_ts"`
	Version  int64     `json:"version"`
}

// DeviceList is device-list.schema.json.
type DeviceList struct {
	Devices    []Device `json:"devices"`
	NextCursor *string  `json:"next_cursor"`
}

// Latest is device-latest.schema.json.
type Latest struct {
	DeviceID string             `json:"device_id"`
	LastTS   time.Time          `json:"last_ts"`
	Version  int64              `json:"version"`
	Metrics  map[string]float64 `json:"metrics"`
}

// Reading is an item of readings-page.schema.json.
type Reading struct {
	EventID uuid.UUID `json:"event_id"`
	TS      time.Time `json:"ts"`
	Metric  string    `json:"metric"`
	Value   float64   `json:"value"`
}

// ReadingsPage is readings-page.schema.json.
type ReadingsPage struct {
	DeviceID   string    `json:"device_id"`
	Readings   []Reading `json:"readings"`
	NextCursor *string   `json:"next_cursor"`
}

// Event is an item of events-page.schema.json.
type Event struct {
	EventID    uuid.UUID       `json:"event_id"`
	Version    int64           `json:"version"`
	Type       string          `json:"type"`
	Payload    json.RawMessage `json:"payload"`
	RecordedAt time.Time       `json:"recorded_at"`
}

// EventsPage is events-page.schema.json.
type EventsPage struct {
	DeviceID   string  `json:"device_id"`
	Events     []Event `json:"events"`
	NextCursor *string `json:"next_cursor"`
}

// Model names the model that scored an anomaly.
type Model struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Anomaly is an item of anomaly-list.schema.json.
type Anomaly struct {
	EventID        uuid.UUID `json:"event_id"`
	Metric         string    `json:"metric"`
	TS             time.Time `json:"ts"`
	Value          float64   `json:"value"`
	Score          float64   `json:"score"`
	ReadingEventID uuid.UUID `json:"reading_event_id"`
	Model          Model     `json:"model"`
	DetectedAt     time.Time `json:"detected_at"`
}

// Skipped is a reading the detector judged not scored
// (anomaly-list.schema.json skipped).
type Skipped struct {
	ReadingEventID uuid.UUID `json:"reading_event_id"`
	Metric         string    `json:"metric"`
	TS             time.Time `json:"ts"`
	Value          float64   `json:"value"`
	Reason         string    `json:"reason"`
	RecordedAt     time.Time `json:"recorded_at"`
}

// AnomalyList is anomaly-list.schema.json.
type AnomalyList struct {
	DeviceID   string    `json:"device_id"`
	Anomalies  []Anomaly `json:"anomalies"`
	NextCursor *string   `json:"next_cursor"`
	Skipped    []Skipped `json:"skipped"`
}

// AnomaliesQuery filters anomalies; Metric "" means every metric.
type AnomaliesQuery struct {
	Metric string
	Page
}

// Page selects a page: Limit 0 means the server default, Cursor "" the first page.
type Page struct {
	Limit  int
	Cursor string
}

// ReadingsQuery filters readings; zero values mean "no filter".
type ReadingsQuery struct {
	Metric string
	From   time.Time
	To     time.Time
	Page
}

// Client calls the query server.
type Client struct{ c apiclient.Client }

// New returns a client for baseURL (http://127.0.0.1:8081 or the gateway).
func New(baseURL string, hc *http.Client) *Client { return &Client{c: apiclient.New(baseURL, hc)} }

func (p Page) values() url.Values {
	v := url.Values{}
	if p.Limit != 0 {
		v.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.Cursor != "" {
		v.Set("cursor", p.Cursor)
	}
	return v
}

func withQuery(path string, v url.Values) string {
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// Devices lists devices ordered by id.
func (c *Client) Devices(ctx context.Context, p Page) (DeviceList, error) {
	var out DeviceList
	_, err := c.c.Do(ctx, http.MethodGet, withQuery("/query/v1/devices", p.values()), nil, &out)
	return out, err
}

// Latest returns the latest metrics of a device.
func (c *Client) Latest(ctx context.Context, deviceID string) (Latest, error) {
	var out Latest
	_, err := c.c.Do(ctx, http.MethodGet, "/query/v1/devices/"+url.PathEscape(deviceID)+"/latest", nil, &out)
	return out, err
}

// Readings returns a page of a device's readings.
func (c *Client) Readings(ctx context.Context, deviceID string, q ReadingsQuery) (ReadingsPage, error) {
	v := q.values()
	if q.Metric != "" {
		v.Set("metric", q.Metric)
	}
	if !q.From.IsZero() {
		v.Set("from", q.From.Format(time.RFC3339Nano))
	}
	if !q.To.IsZero() {
		v.Set("to", q.To.Format(time.RFC3339Nano))
	}
	return c.ReadingsRaw(ctx, deviceID, v)
}

// ReadingsRaw passes query parameters as given (to test bad ones).
func (c *Client) ReadingsRaw(ctx context.Context, deviceID string, v url.Values) (ReadingsPage, error) {
	var out ReadingsPage
	_, err := c.c.Do(ctx, http.MethodGet, withQuery("/query/v1/devices/"+url.PathEscape(deviceID)+"/readings", v), nil, &out)
	return out, err
}

// Events returns a page of a device's raw event stream.
func (c *Client) Events(ctx context.Context, deviceID string, p Page) (EventsPage, error) {
	var out EventsPage
	_, err := c.c.Do(ctx, http.MethodGet, withQuery("/query/v1/devices/"+url.PathEscape(deviceID)+"/events", p.values()), nil, &out)
	return out, err
}

// Anomalies returns a page of a device's detected anomalies, by ts.
func (c *Client) Anomalies(ctx context.Context, deviceID string, q AnomaliesQuery) (AnomalyList, error) {
	v := q.values()
	if q.Metric != "" {
		v.Set("metric", q.Metric)
	}
	var out AnomalyList
	_, err := c.c.Do(ctx, http.MethodGet, withQuery("/query/v1/devices/"+url.PathEscape(deviceID)+"/anomalies", v), nil, &out)
	return out, err
}
