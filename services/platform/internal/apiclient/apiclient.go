// Package apiclient is the small HTTP core shared by the three published
// client packages: JSON in, JSON out, error.schema.json bodies as *Error.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Detail mirrors error.schema.json details[].
type Detail struct {
	Index   *int   `json:"index,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Error is a non-2xx answer.
type Error struct {
	Status  int
	Code    string
	Message string
	Details []Detail
}

func (e *Error) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// Client talks to one server.
type Client struct {
	Base string
	HTTP *http.Client
}

// New returns a client for baseURL (e.g. http://127.0.0.1:8080); hc nil
// means a client with a 30 s timeout.
func New(baseURL string, hc *http.Client) Client {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return Client{Base: strings.TrimRight(baseURL, "/"), HTTP: hc}
}

// Do sends body (raw bytes, or nil) and decodes a 2xx answer into out.
// It returns the status code.
func (c Client) Do(ctx context.Context, method, path string, body []byte, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode/100 != 2 {
		var eb struct {
			Error struct {
				Code    string   `json:"code"`
				Message string   `json:"message"`
				Details []Detail `json:"details"`
			} `json:"error"`
		}
		if jerr := json.Unmarshal(b, &eb); jerr != nil || eb.Error.Code == "" {
			return resp.StatusCode, &Error{Status: resp.StatusCode, Code: "unknown", Message: strings.TrimSpace(string(b))}
		}
		return resp.StatusCode, &Error{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message, Details: eb.Error.Details}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s %s answer: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// JSON marshals v, or panics on a programming error.
func JSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
