package detector

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"platform/internal/contracts"
	"platform/internal/eventstore"
	"platform/internal/inference"
	"platform/internal/tracing"
)

type reading struct {
	point
	eventID uuid.UUID
	fresh   bool
	trace   trace.SpanContext // the span it is judged under (Message.Trace)
}

// Unscored is a fresh reading the detector judged "not scored": retrying
// cannot help (its value is outside the scorer's domain, or the scorer
// refused its window), so it is recorded with the reason instead.
type Unscored struct {
	ReadingEventID uuid.UUID
	DeviceID       string
	Metric         string
	TS             time.Time
	Value          float64
	Reason         string
}

// verdict is what judging one device+metric yields.
type verdict struct {
	window    []point
	anomalies []Event
	unscored  []Unscored
}

// judge scores the fresh readings of rs against win and returns the next
// window, the anomalies among the fresh readings and those not scored. An
// error is transient (the scorer is unavailable): nothing is decided.
func (d *Detector) judge(ctx context.Context, k key, win []point, rs []reading) (verdict, error) {
	var v verdict
	notScored := func(r reading, reason string) {
		if r.fresh {
			v.unscored = append(v.unscored, Unscored{r.eventID, k.device, k.metric, r.ts, r.value, reason})
		}
	}
	seq := make([]reading, 0, len(win)+len(rs))
	for _, p := range win {
		seq = append(seq, reading{point: p})
	}
	for _, r := range rs {
		switch {
		case !inference.ValueDomain.Contains(r.value):
			notScored(r, fmt.Sprintf("value %g outside what the scorer accepts, %s (score-request.schema.json)", r.value, inference.ValueDomain))
		case len(seq) > 0 && !r.ts.After(seq[len(seq)-1].ts):
			if r.fresh {
				d.log.Debug("reading not judged: ts not after the window's last", "device_id", k.device, "metric", k.metric, "event_id", r.eventID, "ts", r.ts)
			}
		default:
			seq = append(seq, r)
		}
	}
	// Score in chunks: up to Window reference points, then new points, at
	// most contracts.MaxScorePoints per request. Only chunks with a fresh reading are sent.
	start := len(win) // first point not yet judged
	for start < len(seq) {
		end := min(len(seq), start+contracts.MaxScorePoints-d.cfg.Window)
		if hasFresh(seq[start:end]) {
			from := max(0, start-d.cfg.Window)
			req := inference.Request{DeviceID: k.device, Metric: k.metric, Points: make([]inference.Point, 0, end-from)}
			for _, r := range seq[from:end] {
				req.Points = append(req.Points, inference.Point{TS: r.ts, Value: r.value})
			}
			res, err := d.scorer.Score(tracing.Under(ctx, lastFresh(seq[start:end]).trace), req)
			switch {
			case isRefusal(err):
				d.log.Warn("scorer refused a window; its readings are recorded as not scored", "device_id", k.device, "metric", k.metric, "points", len(req.Points), "err", err)
				for _, r := range seq[start:end] {
					notScored(r, "the scorer refused the window: "+err.Error())
				}
			case err != nil:
				return verdict{}, fmt.Errorf("score %s/%s: %w", k.device, k.metric, err)
			default:
				v.anomalies = append(v.anomalies, d.anomalies(k, seq, res, from, start, end)...)
			}
		}
		start = end
	}
	v.window = make([]point, 0, d.cfg.Window)
	for _, r := range seq[max(0, len(seq)-d.cfg.Window):] {
		v.window = append(v.window, r.point)
	}
	return v, nil
}

// anomalies are the fresh readings of seq[start:end] that res (the score
// of seq[from:end]) found anomalous.
func (d *Detector) anomalies(k key, seq []reading, res inference.Result, from, start, end int) []Event {
	var out []Event
	now := d.now().UTC().Truncate(time.Microsecond)
	for _, a := range res.Anomalies {
		i := from + a.Index
		if i < start || i >= end || !seq[i].fresh {
			continue // reference point, judged before
		}
		r := seq[i]
		out = append(out, Event{
			EventID: AnomalyID(r.eventID, k.metric), Type: eventstore.AnomalyDetected,
			DeviceID: k.device, Metric: k.metric, TS: r.ts, Value: r.value, Score: a.Score,
			ReadingEventID: r.eventID, Model: res.Model, DetectedAt: now, trace: r.trace,
		})
	}
	return out
}

// lastFresh is the newest fresh reading of rs: the scoring call of a window
// joins its trace (a window mixes readings of several requests; the newest
// is the one the call is made for).
func lastFresh(rs []reading) reading {
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i].fresh {
			return rs[i]
		}
	}
	return reading{}
}

func hasFresh(rs []reading) bool {
	for _, r := range rs {
		if r.fresh {
			return true
		}
	}
	return false
}

// isRefusal: the window itself is wrong (a 4xx, or the request failed its
// schema before sending); sending it again cannot succeed.
func isRefusal(err error) bool {
	var rej *inference.RejectedError
	var inv *contracts.InvalidError
	return errors.As(err, &rej) || errors.As(err, &inv)
}
