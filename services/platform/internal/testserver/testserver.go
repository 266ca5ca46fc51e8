// Package testserver runs a server's handler for the component tests: on a
// free loopback port, with the production HTTP settings (httpx.NewServer),
// so the tests drive the real server through its client package; and
// checks the error answers those clients return.
package testserver

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"platform/internal/apiclient"
	"platform/internal/httpx"
)

// Start serves h on 127.0.0.1 (a free port) until stop, which shuts the
// server down gracefully. baseURL is "http://127.0.0.1:<port>".
func Start(h http.Handler, log *slog.Logger) (baseURL string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := httpx.NewServer(ln.Addr().String(), h, log)
	go srv.Serve(ln) //nolint:errcheck // http.ErrServerClosed after stop
	return "http://" + ln.Addr().String(), func() { _ = srv.Shutdown(context.Background()) }, nil
}

// APIError asserts that err is the error answer of a server (any client
// package: their Error is apiclient.Error) with this status and code, and
// returns it for further checks.
func APIError(t testing.TB, err error, status int, code string) *apiclient.Error {
	t.Helper()
	var ae *apiclient.Error
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, status, ae.Status)
	assert.Equal(t, code, ae.Code)
	return ae
}
