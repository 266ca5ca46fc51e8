// Package client is the published Go client of the actions server
// (schemas/openapi/actions.yaml).
package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"

	"platform/internal/apiclient"
)

// Error is a non-2xx answer (error.schema.json).
type Error = apiclient.Error

// Command statuses.
const (
	StatusIssued       = "issued"
	StatusSent         = "sent"
	StatusAcknowledged = "acknowledged"
	StatusFailed       = "failed"
)

// CommandRequest is command-request.schema.json.
type CommandRequest struct {
	CommandID uuid.UUID      `json:"command_id"`
	Name      string         `json:"name"`
	Args      map[string]any `json:"args,omitempty"`
}

// Command is command.schema.json.
type Command struct {
	CommandID      uuid.UUID       `json:"command_id"`
	DeviceID       string          `json:"device_id"`
	Name           string          `json:"name"`
	Args           json.RawMessage `json:"args"`
	Status         string          `json:"status"`
	IssuedAt       time.Time       `json:"issued_at"`
	SentAt         *time.Time      `json:"sent_at"`
	AcknowledgedAt *time.Time      `json:"acknowledged_at"`
	FailedAt       *time.Time      `json:"failed_at"`
	Result         *string         `json:"result"`
}

// Client calls the actions server.
type Client struct{ c apiclient.Client }

// New returns a client for baseURL (http://127.0.0.1:8082 or the gateway).
func New(baseURL string, hc *http.Client) *Client { return &Client{c: apiclient.New(baseURL, hc)} }

// Issue asks for a command. created is false when command_id was already
// known (the existing command is returned, nothing is sent again).
func (c *Client) Issue(ctx context.Context, deviceID string, req CommandRequest) (cmd Command, created bool, err error) {
	return c.IssueRaw(ctx, deviceID, apiclient.JSON(req))
}

// IssueRaw posts body as is.
func (c *Client) IssueRaw(ctx context.Context, deviceID string, body []byte) (Command, bool, error) {
	var out Command
	status, err := c.c.Do(ctx, http.MethodPost, "/actions/v1/devices/"+url.PathEscape(deviceID)+"/commands", body, &out)
	return out, status == http.StatusCreated, err
}

// Get returns a command and its status.
func (c *Client) Get(ctx context.Context, commandID string) (Command, error) {
	var out Command
	_, err := c.c.Do(ctx, http.MethodGet, "/actions/v1/commands/"+url.PathEscape(commandID), nil, &out)
	return out, err
}
