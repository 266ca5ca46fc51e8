// Package metrics holds the process's counters (expvar, so /debug/vars
// could serve them too); /readyz reports them.
package metrics

import "expvar"

// DeadLetters counts the records each consumer sent to a dead-letter
// topic, keyed by consumer name.
var DeadLetters = expvar.NewMap("dead_letters")

// DeadLetterCounts is a snapshot of DeadLetters.
func DeadLetterCounts() map[string]int64 {
	out := map[string]int64{}
	DeadLetters.Do(func(kv expvar.KeyValue) {
		if v, ok := kv.Value.(*expvar.Int); ok {
			out[kv.Key] = v.Value()
		}
	})
	return out
}

// SpansExported and SpansDropped count the spans the tracing export queue
// sent to TRACE_EXPORT_URL and those it dropped (queue full, viewer failed
// or slow).
var (
	SpansExported = expvar.NewInt("spans_exported")
	SpansDropped  = expvar.NewInt("spans_dropped")
)

// SpanCounts is /readyz's "tracing".
type SpanCounts struct {
	Exported int64 `json:"exported"`
	Dropped  int64 `json:"dropped"`
}

// Spans is a snapshot of SpansExported and SpansDropped.
func Spans() SpanCounts {
	return SpanCounts{Exported: SpansExported.Value(), Dropped: SpansDropped.Value()}
}
