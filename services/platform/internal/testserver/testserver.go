// Package testserver runs a server's handler for the component tests: on a
// free loopback port, with the production HTTP settings (httpx.NewServer),
// so the tests drive the real server through its client package; and
// checks the error answers those clients return.
package testserver

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"platform/internal/apiclient"
	"platform/internal/httpx"
	"platform/internal/testdb"
)

// Main is the TestMain of a server's component tests: a fresh database
// (testdb.Main), the handler that build makes on it served on a free port
// (Start), serving told the base URL, the tests; then the server stopped,
// the database dropped, and exit with the tests' code.
func Main(m *testing.M, prefix string, log *slog.Logger, build func(*testdb.DB) http.Handler, serving func(baseURL string)) {
	os.Exit(testdb.Main(func(db *testdb.DB) int {
		url, stop, err := Start(build(db), log)
		if err != nil {
			fmt.Fprintln(os.Stderr, "FAIL: "+err.Error())
			return 1
		}
		defer stop()
		serving(url)
		return m.Run()
	}, prefix))
}

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
