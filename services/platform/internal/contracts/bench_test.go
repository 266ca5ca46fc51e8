package contracts

import (
	"encoding/json"
	"fmt"
	"testing"
)

func batchBody(n int) []byte {
	rs := make([]map[string]any, n)
	for i := range rs {
		rs[i] = map[string]any{"event_id": fmt.Sprintf("0b7c1e2a-4d3f-4a5b-9c6d-%012d", i), "device_id": fmt.Sprintf("dev-%d", i%100),
			"ts": "2026-01-01T00:00:00.123Z", "metrics": map[string]any{"temp": 20.5, "hum": 40, "rpm": i}}
	}
	b, _ := json.Marshal(map[string]any{"readings": rs})
	return b
}

// BenchmarkValidateBatch1000 measures validating a full 1000-reading batch.
func BenchmarkValidateBatch1000(b *testing.B) {
	v := Default()
	body := batchBody(1000)
	b.SetBytes(int64(len(body)))
	for i := 0; i < b.N; i++ {
		if err := v.Validate(TelemetryBatch, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeBatch1000 measures Decode (the ingest path: items
// validated on GOMAXPROCS goroutines) of a full 1000-reading batch.
func BenchmarkDecodeBatch1000(b *testing.B) {
	v := Default()
	body := batchBody(1000)
	b.SetBytes(int64(len(body)))
	for i := 0; i < b.N; i++ {
		if _, err := v.Decode(TelemetryBatch, body); err != nil {
			b.Fatal(err)
		}
	}
}
