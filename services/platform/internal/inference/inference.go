// Package inference is the Go client of the AI inference service
// (schemas/openapi/ai-inference.yaml): POST /v1/score and GET /healthz.
// Requests and answers are validated against the shared schemas
// (score-request.schema.json, score-response.schema.json). Only connection
// errors are retried (the request never reached the server); a timeout or
// a reset after sending is reported at once as ErrUnavailable, a 4xx as a
// *RejectedError.
package inference

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"platform/internal/contracts"
	"platform/internal/pause"
	"platform/schemas"
)

// ErrUnavailable: the service could not be reached or did not answer in
// time, or answered 5xx. Retrying later may succeed.
var ErrUnavailable = errors.New("AI inference service unavailable")

// RejectedError is a 4xx answer: the request itself is wrong (FastAPI's
// {"detail": [...]} is kept as Detail). Retrying it cannot succeed.
type RejectedError struct {
	Status int
	Detail json.RawMessage
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("AI inference service rejected the request: HTTP %d %s", e.Status, strings.TrimSpace(string(e.Detail)))
}

// Point is one reading of score-request.schema.json.
type Point struct {
	TS    time.Time `json:"ts"`
	Value float64   `json:"value"`
}

// Request is score-request.schema.json.
type Request struct {
	DeviceID string  `json:"device_id"`
	Metric   string  `json:"metric"`
	Points   []Point `json:"points"`
}

// Anomaly is an item of score-response.schema.json anomalies.
type Anomaly struct {
	Index int       `json:"index"`
	TS    time.Time `json:"ts"`
	Value float64   `json:"value"`
	Score float64   `json:"score"`
}

// Model names the model that scored.
type Model struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Result is score-response.schema.json.
type Result struct {
	DeviceID  string    `json:"device_id"`
	Metric    string    `json:"metric"`
	Scores    []float64 `json:"scores"`
	Anomalies []Anomaly `json:"anomalies"`
	Model     Model     `json:"model"`
}

// Config of a Client. Zero values take the defaults.
type Config struct {
	BaseURL string        // e.g. http://127.0.0.1:8090
	Timeout time.Duration // per attempt, default 5 s
	Retries int           // extra attempts on connection errors, default 3
	Backoff time.Duration // first retry delay (doubles), default 100 ms
	// Transport sends the requests (nil: http.DefaultTransport); the
	// detector's carries traceparent (tracing.Transport).
	Transport http.RoundTripper
}

// Client calls the AI inference service. Safe for concurrent use.
type Client struct {
	cfg  Config
	http *http.Client
	val  *contracts.Validator
}

// New returns a client; val nil means contracts.Default().
func New(cfg Config, val *contracts.Validator) *Client {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Retries < 0 {
		cfg.Retries = 0
	} else if cfg.Retries == 0 {
		cfg.Retries = 3
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 100 * time.Millisecond
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if val == nil {
		val = contracts.Default()
	}
	return &Client{cfg: cfg, http: &http.Client{Timeout: cfg.Timeout, Transport: cfg.Transport}, val: val}
}

// Score sends one window. The request is validated before sending (an
// invalid one is a *contracts.InvalidError, nothing is sent) and the answer
// after receiving (an invalid answer is ErrUnavailable-wrapped: the service
// misbehaves).
func (c *Client) Score(ctx context.Context, req Request) (Result, error) {
	var res Result
	body, err := json.Marshal(req)
	if err != nil {
		return res, err
	}
	if err := c.val.Validate(contracts.ScoreRequest, body); err != nil {
		return res, fmt.Errorf("score request: %w", err)
	}
	status, b, err := c.do(ctx, http.MethodPost, "/v1/score", body)
	if err != nil {
		return res, err
	}
	switch {
	case status >= 500:
		return res, fmt.Errorf("%w: POST /v1/score HTTP %d: %s", ErrUnavailable, status, oneLine(b))
	case status >= 400:
		return res, &RejectedError{Status: status, Detail: b}
	case status != http.StatusOK:
		return res, fmt.Errorf("%w: POST /v1/score unexpected HTTP %d", ErrUnavailable, status)
	}
	if err := c.val.Validate(contracts.ScoreResponse, b); err != nil {
		return res, fmt.Errorf("%w: invalid answer: %w", ErrUnavailable, err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return res, fmt.Errorf("%w: undecodable answer: %w", ErrUnavailable, err)
	}
	if len(res.Scores) != len(req.Points) {
		return res, fmt.Errorf("%w: %d scores for %d points", ErrUnavailable, len(res.Scores), len(req.Points))
	}
	for _, a := range res.Anomalies {
		if a.Index < 0 || a.Index >= len(req.Points) {
			return res, fmt.Errorf("%w: anomaly index %d out of range", ErrUnavailable, a.Index)
		}
	}
	return res, nil
}

// Ping is the readiness probe: GET /healthz answers 200.
func (c *Client) Ping(ctx context.Context) error {
	status, b, err := c.do(ctx, http.MethodGet, "/healthz", nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("%w: GET /healthz HTTP %d: %s", ErrUnavailable, status, oneLine(b))
	}
	return nil
}

// do sends the request, retrying connection errors with backoff.
func (c *Client) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	backoff := c.cfg.Backoff
	for attempt := 0; ; attempt++ {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, c.cfg.BaseURL+path, rd)
		if err != nil {
			return 0, nil, err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Accept", "application/json")
		resp, err := c.http.Do(req)
		if err == nil {
			b, rerr := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
			resp.Body.Close()
			if rerr != nil {
				return 0, nil, fmt.Errorf("%w: %s %s: reading the answer: %w", ErrUnavailable, method, path, rerr)
			}
			return resp.StatusCode, b, nil
		}
		if ctx.Err() != nil {
			return 0, nil, fmt.Errorf("%w: %s %s: %w", ErrUnavailable, method, path, ctx.Err())
		}
		if !isConnError(err) || attempt >= c.cfg.Retries {
			return 0, nil, fmt.Errorf("%w: %s %s%s: %w", ErrUnavailable, method, c.cfg.BaseURL, path, err)
		}
		if !pause.For(ctx, backoff) {
			return 0, nil, fmt.Errorf("%w: %s %s: %w", ErrUnavailable, method, path, ctx.Err())
		}
		backoff *= 2
	}
}

// isConnError: the connection could not be made, so the request was never
// sent (refused, unreachable, DNS). Timeouts and resets after sending are not.
func isConnError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns) || errors.Is(err, syscall.ECONNREFUSED)
}

func oneLine(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// Domain is the range of values the scorer accepts
// (score-request.schema.json, $defs.point.properties.value): the one place
// both the detector and the AI inference service take it from.
type Domain struct{ Min, Max float64 }

// Contains reports whether v can be scored.
func (d Domain) Contains(v float64) bool { return v >= d.Min && v <= d.Max }

func (d Domain) String() string { return fmt.Sprintf("[%g, %g]", d.Min, d.Max) }

// ValueDomain is read from the embedded score-request.schema.json.
var ValueDomain = mustValueDomain()

func mustValueDomain() Domain {
	b, err := schemas.FS.ReadFile("score-request.schema.json")
	if err != nil {
		panic(err)
	}
	var s struct {
		Defs struct {
			Point struct {
				Properties struct {
					Value struct {
						Minimum *float64 `json:"minimum"`
						Maximum *float64 `json:"maximum"`
					} `json:"value"`
				} `json:"properties"`
			} `json:"point"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		panic(fmt.Sprintf("score-request.schema.json: %v", err))
	}
	v := s.Defs.Point.Properties.Value
	if v.Minimum == nil || v.Maximum == nil {
		panic("score-request.schema.json: $defs.point.properties.value needs minimum and maximum")
	}
	return Domain{Min: *v.Minimum, Max: *v.Maximum}
}
