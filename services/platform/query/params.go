package query

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"platform/internal/contracts"
	"platform/internal/httpx"
)

// Page sizes.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// params collects query-string problems so that one 400 names them all.
type params struct {
	q   url.Values
	bad []httpx.Detail
}

func newParams(r *http.Request, allowed ...string) *params {
	p := &params{q: r.URL.Query()}
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[a] = true
	}
	for k := range p.q {
		if !ok[k] {
			p.fail(k, "unknown parameter")
		}
	}
	return p
}

func (p *params) fail(name, msg string) {
	p.bad = append(p.bad, httpx.Detail{Field: name, Message: msg})
}

func (p *params) limit() int {
	v := p.q.Get("limit")
	if v == "" {
		return DefaultLimit
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxLimit {
		p.fail("limit", fmt.Sprintf("must be a whole number between 1 and %d", MaxLimit))
		return DefaultLimit
	}
	return n
}

func (p *params) time(name string) *time.Time {
	v := p.q.Get(name)
	if v == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		p.fail(name, "must be an RFC 3339 date-time, e.g. 2026-01-01T00:00:00Z")
		return nil
	}
	return &t
}

// metric is the optional metric filter.
func (p *params) metric() *string {
	m := p.q.Get("metric")
	if m == "" {
		return nil
	}
	if !contracts.Metric.MatchString(m) {
		p.fail("metric", "must match "+contracts.Metric.String())
	}
	return &m
}

func (p *params) cursor(into any) bool {
	v := p.q.Get("cursor")
	if v == "" {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err == nil {
		err = json.Unmarshal(b, into)
	}
	if err != nil {
		p.fail("cursor", "is not a cursor returned by this API")
		return false
	}
	return true
}

func (p *params) done(w http.ResponseWriter) bool {
	if len(p.bad) == 0 {
		return true
	}
	httpx.WriteError(w, http.StatusBadRequest, httpx.CodeInvalidParam, fmt.Sprintf("%d invalid parameter(s)", len(p.bad)), p.bad...)
	return false
}

// writePage answers 200 with the page of rows (page) in the body that body
// makes of it, or httpx.Failed's answer when the store failed (err).
func writePage[T any](w http.ResponseWriter, r *http.Request, log *slog.Logger, rows []T, err error, limit int,
	cursorOf func(last T) any, body func(rows []T, next *string) any) {
	if err != nil {
		httpx.Failed(w, r, log, err)
		return
	}
	rows, next := page(rows, limit, cursorOf)
	httpx.WriteJSON(w, http.StatusOK, body(rows, next))
}

// page trims rows fetched with LIMIT limit+1 to a page and, when there was
// more, returns the cursor of its last row. Never a nil slice: an empty
// page is [] in JSON.
func page[T any](rows []T, limit int, cursorOf func(last T) any) ([]T, *string) {
	if len(rows) <= limit {
		if rows == nil {
			rows = []T{}
		}
		return rows, nil
	}
	b, _ := json.Marshal(cursorOf(rows[limit-1]))
	next := base64.RawURLEncoding.EncodeToString(b)
	return rows[:limit], &next
}
