package ingestion

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"platform/internal/contracts"
)

// agree checks the one promise of the batch decoder: whatever it accepts,
// the schema validator's path accepts too, with the very same readings.
func agree(t testing.TB, d *batchDecoder, body []byte) bool {
	fast, ok := d.decode(body)
	if !ok {
		return false
	}
	doc, err := contracts.Default().Decode(contracts.TelemetryBatch, body)
	require.NoError(t, err, "the decoder accepted what the schema rejects: %s", body)
	slow, err := readingsFromDoc(doc)
	require.NoError(t, err, "the decoder accepted what the handler rejects: %s", body)
	require.Equal(t, slow, fast, "%s", body)
	return true
}

const validReading = `{"event_id":"0b1e5d2c-3f4a-4b5c-8d6e-7f8091a2b3c4","device_id":"dev-1","ts":"2026-01-02T03:04:05.123+01:00","metrics":{"temp":21.5,"rpm":-3e2}}`

func batchOf(items ...string) string { return `{"readings":[` + strings.Join(items, ",") + `]}` }

var decoderSeeds = []string{
	batchOf(validReading),
	batchOf(validReading, strings.ReplaceAll(validReading, "dev-1", `d\u0041v`)),
	" \n" + batchOf(validReading) + "\t",
	batchOf(strings.Replace(validReading, `"event_id"`, `"Event_ID"`, 1)),
	batchOf(strings.Replace(validReading, `"temp":21.5`, `"temp":21.5,"temp":22`, 1)),
	batchOf(strings.Replace(validReading, `"device_id":"dev-1"`, `"device_id":"dev-1","device_id":"dev-2"`, 1)),
	batchOf(strings.Replace(validReading, `}}`, `},"extra":1}`, 1)),
	batchOf(strings.Replace(validReading, `21.5`, `021.5`, 1)),
	batchOf(strings.Replace(validReading, `21.5`, `21.`, 1)),
	batchOf(strings.Replace(validReading, `21.5`, `1e400`, 1)),
	batchOf(strings.Replace(validReading, `21.5`, `NaN`, 1)),
	batchOf(strings.Replace(validReading, `21.5`, `"21.5"`, 1)),
	batchOf(strings.Replace(validReading, `21.5`, `null`, 1)),
	batchOf(strings.Replace(validReading, `T03`, `t03`, 1)),
	batchOf(strings.Replace(validReading, `T03`, ` 03`, 1)),
	batchOf(strings.Replace(validReading, `05.123`, `60`, 1)),
	batchOf(strings.Replace(validReading, `01-02T`, `02-30T`, 1)),
	batchOf(strings.Replace(validReading, `+01:00`, `+01:60`, 1)),
	batchOf(strings.Replace(validReading, `+01:00`, `+24:00`, 1)),
	batchOf(strings.Replace(validReading, `"dev-1"`, `"dev/1"`, 1)),
	batchOf(strings.Replace(validReading, `"dev-1"`, "\"dev\xff\"", 1)),
	batchOf(strings.Replace(validReading, `"temp"`, "\"t\xffmp\"", 1)),
	batchOf(strings.Replace(validReading, `0b1e5d2c-`, `0b1e5d2c`, 1)),
	batchOf(strings.Replace(validReading, `{"temp":21.5,"rpm":-3e2}`, `{}`, 1)),
	batchOf(strings.Replace(validReading, `"metrics":{"temp":21.5,"rpm":-3e2}`, `"metrics":null`, 1)),
	batchOf(),
	batchOf(validReading) + "x",
	`{"readings":[` + validReading + `],"readings":[]}`,
	`{"Readings":[` + validReading + `]}`,
	`[` + validReading + `]`,
	`{"readings":{}}`,
}

func TestBatchDecoderAgreesWithTheSchema(t *testing.T) {
	d, err := newBatchDecoder()
	require.NoError(t, err)
	require.True(t, agree(t, d, []byte(decoderSeeds[0])), "a plainly valid batch takes the fast path")
	require.True(t, agree(t, d, []byte(decoderSeeds[1])), "escapes are decoded as the validator does")
	for _, seed := range decoderSeeds[3:] {
		assert.False(t, agree(t, d, []byte(seed)), "declined: %s", seed)
	}
	metrics := make([]string, 101)
	for i := range metrics {
		metrics[i] = fmt.Sprintf(`"m%d":%d`, i, i)
	}
	tooMany := strings.Replace(validReading, `"temp":21.5,"rpm":-3e2`, strings.Join(metrics, ","), 1)
	assert.False(t, agree(t, d, []byte(batchOf(tooMany))), "101 metrics")
	items := make([]string, 1001)
	for i := range items {
		items[i] = validReading
	}
	assert.False(t, agree(t, d, []byte(batchOf(items...))), "1001 readings")
	assert.True(t, agree(t, d, []byte(batchOf(items[:1000]...))), "1000 readings")

	// Random damage to valid bodies: whatever the decoder still takes, the
	// schema path takes alike (a fixed seed, so a failure replays).
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte(`{}[]":,.-+eE0123456789 aZ_\/tT` + "\xff")
	accepted := 0
	for i := 0; i < 20000; i++ {
		b := []byte(decoderSeeds[rng.IntN(3)])
		for n := 1 + rng.IntN(3); n > 0; n-- {
			j := rng.IntN(len(b))
			switch rng.IntN(3) {
			case 0:
				b[j] = alphabet[rng.IntN(len(alphabet))]
			case 1:
				b = append(b[:j], b[j+1:]...)
			default:
				b = append(b[:j], append([]byte{alphabet[rng.IntN(len(alphabet))]}, b[j:]...)...)
			}
		}
		if agree(t, d, b) {
			accepted++
		}
	}
	t.Logf("%d of 20000 damaged bodies still valid and decoded alike", accepted)
}

// FuzzBatchDecoder explores further: go test -fuzz FuzzBatchDecoder ./ingestion/
func FuzzBatchDecoder(f *testing.F) {
	d, err := newBatchDecoder()
	require.NoError(f, err)
	for _, s := range decoderSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { agree(t, d, body) })
}
