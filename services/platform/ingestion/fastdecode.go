package ingestion

import (
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/valyala/fastjson"

	"platform/internal/contracts"
)

// batchDecoder turns a telemetry batch straight into readings when the
// body is plainly valid, without the generic schema validator (a third of
// the HTTP path's CPU). It accepts only what telemetry-batch.schema.json
// accepts, with the patterns and limits read from the schema files; for
// anything else, or any doubt (duplicate keys, a timestamp that time.Parse
// would not take), it declines and the handler takes the validator's path,
// which also writes the error body. TestBatchDecoderAgreesWithTheSchema
// holds the two paths equal.
type batchDecoder struct {
	parsers                fastjson.ParserPool
	uuid, ts               *regexp.Regexp
	minItems, maxItems     int
	minMetrics, maxMetrics int
}

func newBatchDecoder() (*batchDecoder, error) {
	d := &batchDecoder{
		uuid: contracts.MustPattern(contracts.TelemetryReading, "/$defs/uuid/pattern"),
		ts:   contracts.MustPattern(contracts.TelemetryReading, "/$defs/timestamp/pattern"),
	}
	for _, l := range []struct {
		n               *int
		schema, pointer string
	}{
		{&d.minItems, contracts.TelemetryBatch, "/properties/readings/minItems"},
		{&d.maxItems, contracts.TelemetryBatch, "/properties/readings/maxItems"},
		{&d.minMetrics, contracts.TelemetryReading, "/$defs/metrics/minProperties"},
		{&d.maxMetrics, contracts.TelemetryReading, "/$defs/metrics/maxProperties"},
	} {
		var err error
		if *l.n, err = contracts.KeywordInt(l.schema, l.pointer); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// decode returns the readings and true, or false when the validator's path
// must decide.
func (d *batchDecoder) decode(body []byte) ([]Reading, bool) {
	// fastjson is lenient about some number spellings; the standard
	// library's scanner is not, and costs one allocation-free pass.
	if !json.Valid(body) {
		return nil, false
	}
	p := d.parsers.Get()
	defer d.parsers.Put(p)
	doc, err := p.ParseBytes(body)
	if err != nil {
		return nil, false
	}
	top, err := doc.Object()
	if err != nil || top.Len() != 1 {
		return nil, false
	}
	readings := top.Get("readings")
	if readings == nil {
		return nil, false
	}
	items, err := readings.Array()
	if err != nil || len(items) < d.minItems || len(items) > d.maxItems {
		return nil, false
	}
	out := make([]Reading, len(items))
	for i, item := range items {
		r, ok := d.reading(item)
		if !ok {
			return nil, false
		}
		out[i] = r
	}
	return out, true
}

func (d *batchDecoder) reading(v *fastjson.Value) (Reading, bool) {
	obj, err := v.Object()
	if err != nil || obj.Len() != 4 {
		return Reading{}, false
	}
	var r Reading
	var id, device, ts []byte
	var metrics *fastjson.Object
	seen := 0
	ok := true
	obj.Visit(func(key []byte, v *fastjson.Value) {
		var err error
		switch string(key) {
		case "event_id":
			id, err = v.StringBytes()
			seen |= 1
		case "device_id":
			device, err = v.StringBytes()
			seen |= 2
		case "ts":
			ts, err = v.StringBytes()
			seen |= 4
		case "metrics":
			metrics, err = v.Object()
			seen |= 8
		default:
			ok = false
		}
		ok = ok && err == nil
	})
	if !ok || seen != 15 || !d.uuid.Match(id) || !contracts.DeviceID.Match(device) || !d.ts.Match(ts) {
		return Reading{}, false
	}
	if r.EventID, err = uuid.ParseBytes(id); err != nil {
		return Reading{}, false
	}
	if r.TS, err = time.Parse(time.RFC3339Nano, string(ts)); err != nil || !offsetInRange(ts) {
		return Reading{}, false
	}
	r.DeviceID = string(device)
	if metrics.Len() < d.minMetrics || metrics.Len() > d.maxMetrics {
		return Reading{}, false
	}
	r.Metrics = make(map[string]float64, metrics.Len())
	var num []byte
	metrics.Visit(func(key []byte, v *fastjson.Value) {
		if !ok || v.Type() != fastjson.TypeNumber || !contracts.Metric.Match(key) {
			ok = false
			return
		}
		num = v.MarshalTo(num[:0]) // the number's own text: parsed as the validator's path does
		f, err := strconv.ParseFloat(string(num), 64)
		if _, dup := r.Metrics[string(key)]; err != nil || dup || math.IsInf(f, 0) || math.IsNaN(f) {
			ok = false
			return
		}
		r.Metrics[string(key)] = f
	})
	return r, ok
}

// offsetInRange: time.Parse takes a zone offset such as +01:60, RFC 3339
// (and the validator's date-time format) does not.
func offsetInRange(ts []byte) bool {
	n := len(ts)
	if ts[n-1] == 'Z' || ts[n-1] == 'z' {
		return true
	}
	hh := int(ts[n-5]-'0')*10 + int(ts[n-4]-'0')
	mm := int(ts[n-2]-'0')*10 + int(ts[n-1]-'0')
	return hh <= 23 && mm <= 59
}
