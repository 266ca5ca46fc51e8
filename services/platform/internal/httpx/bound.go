package httpx

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"
)

// RetryAfter is the Retry-After (seconds) of a 503. How long a dependency
// stalls is unknown, so the client comes back soon; each try waits at most
// the request's bound again.
const RetryAfter = "1"

// Bound gives every request of h a deadline of timeout from its start: a
// wait on a dependency (a pool connection, a query, a commit) gives up then,
// so a stalled database holds no request longer, and Failed answers 503.
func Bound(timeout time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// Failed answers a request whose work failed with err. When the request's
// bound ran out, it is 503 with Retry-After: nothing was acknowledged, and
// the client retries the same request (a write whose commit landed after
// the deadline is then a duplicate, a no-op by its ids). Anything else is a
// 500, logged.
func Failed(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(r.Context().Err(), context.DeadlineExceeded) {
		log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		WriteError(w, http.StatusInternalServerError, CodeInternal, "internal error")
		return
	}
	log.WarnContext(r.Context(), "request gave up waiting", "method", r.Method, "path", r.URL.Path, "err", err)
	w.Header().Set("Retry-After", RetryAfter)
	WriteError(w, http.StatusServiceUnavailable, CodeUnavailable,
		"a dependency did not answer in time; nothing was acknowledged: retry the same request")
}
