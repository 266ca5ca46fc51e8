// Package httpx holds what the three HTTP servers share: server timeouts,
// the request bound (bound.go), JSON and error responses (error.schema.json)
// and the health endpoints.
package httpx

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"

	"platform/internal/buildinfo"
	"platform/internal/metrics"
)

// NewServer returns an http.Server with explicit timeouts.
func NewServer(addr string, h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// Detail is one entry of error.details.
type Detail struct {
	Index   *int   `json:"index,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// ErrorBody is error.schema.json.
type ErrorBody struct {
	Error struct {
		Code    string   `json:"code"`
		Message string   `json:"message"`
		Details []Detail `json:"details"`
	} `json:"error"`
}

// Error codes of error.schema.json.
const (
	CodeMalformedJSON   = "malformed_json"
	CodeInvalidBody     = "invalid_body"
	CodeEmptyBatch      = "empty_batch"
	CodeTooLarge        = "too_large"
	CodeInvalidParam    = "invalid_parameter"
	CodeNotFound        = "not_found"
	CodeConflict        = "conflict"
	CodeUnsupportedType = "unsupported_media_type"
	CodeInternal        = "internal"
	CodeUnavailable     = "unavailable"
)

// WriteJSON writes v with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError writes an error.schema.json body.
func WriteError(w http.ResponseWriter, status int, code, msg string, details ...Detail) {
	var b ErrorBody
	b.Error.Code = code
	b.Error.Message = msg
	b.Error.Details = details
	if b.Error.Details == nil {
		b.Error.Details = []Detail{}
	}
	WriteJSON(w, status, b)
}

// Check is one readiness probe.
type Check func(ctx context.Context) error

// Health is health.schema.json.
type Health struct {
	Status  string `json:"status"`
	Service string `json:"service"`
	// PID lets a readiness probe tell the process it started from another
	// one answering on the same port.
	PID int `json:"pid"`
	buildinfo.Info
	Checks map[string]string `json:"checks,omitempty"`
	// DeadLetters: records each consumer dead-lettered since start.
	DeadLetters map[string]int64 `json:"dead_letters,omitempty"`
	// Tracing: spans exported and dropped since start (GET /readyz).
	Tracing *metrics.SpanCounts `json:"tracing,omitempty"`
}

// HandleHealth registers GET /healthz (alive + build info) and GET /readyz
// (every check within 2 s) on mux.
func HandleHealth(mux *http.ServeMux, service string, checks map[string]Check) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, Health{Status: "ok", Service: service, PID: os.Getpid(), Info: buildinfo.Get()})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		names := make([]string, 0, len(checks))
		for n := range checks {
			names = append(names, n)
		}
		sort.Strings(names)
		res := make(map[string]string, len(checks))
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, n := range names {
			wg.Add(1)
			go func() {
				defer wg.Done()
				msg := "ok"
				if err := checks[n](ctx); err != nil {
					msg = err.Error()
				}
				mu.Lock()
				res[n] = msg
				mu.Unlock()
			}()
		}
		wg.Wait()
		h := Health{Status: "ok", Service: service, PID: os.Getpid(), Info: buildinfo.Get(), Checks: res, DeadLetters: metrics.DeadLetterCounts()}
		spans := metrics.Spans()
		h.Tracing = &spans
		status := http.StatusOK
		for _, m := range res {
			if m != "ok" {
				h.Status, status = "unavailable", http.StatusServiceUnavailable
			}
		}
		WriteJSON(w, status, h)
	})
}

// Recover turns a handler panic into a 500 and a log line.
func Recover(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.ErrorContext(r.Context(), "handler panic", "path", r.URL.Path, "panic", v)
				WriteError(w, http.StatusInternalServerError, CodeInternal, "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}
