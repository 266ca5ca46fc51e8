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
