// Package detector is the anomaly detector, hosted by the query server: a
// consumer group (ANOMALY_CONSUMER_GROUP, default anomaly-detector) on
// telemetry.v1 that keeps a bounded window of readings per device+metric,
// asks a Scorer (the AI inference service) to score each window with its
// new readings, and for every new anomalous reading appends an
// AnomalyDetected event, an anomalies row and an outbox row for
// anomalies.v1 in one transaction. Offsets are committed only after that
// transaction (kafkax.Consume); a scorer that is down or slow makes Apply
// fail, so the same records are retried and nothing past them is committed.
//
// Exactly-once effect: a reading is "new" until its event id is recorded
// in processed_messages (consumer "anomaly-detector") by the transaction
// that stores its anomalies; the anomaly's event id is derived from the
// reading's event id and the metric (UUIDv5), so even a race cannot store
// it twice. A redelivered reading only refills the window.
//
// Windows survive restarts by being rebuilt: the first time a device+metric
// is seen after a start (or after its window was evicted), its last Window
// readings before the new ones are loaded from the readings projection
// (written by the query consumer from the same topic). Readings whose ts is
// not after the window's last ts (late or repeated) are not judged: the
// model needs strictly increasing timestamps.
package detector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"platform/internal/contracts"
	"platform/internal/eventstore"
	"platform/internal/inference"
)

// ConsumerName keys processed_messages for the detector.
const ConsumerName = "anomaly-detector"

// MaxPoints is the most points one score request may carry
// (score-request.schema.json).
const MaxPoints = 4096

// anomalyNS is the UUIDv5 namespace of anomaly event ids.
var anomalyNS = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://platform.invalid/anomaly-detected"))

// AnomalyID is the event id of the anomaly of metric in reading readingID.
func AnomalyID(readingID uuid.UUID, metric string) uuid.UUID {
	return uuid.NewSHA1(anomalyNS, []byte(readingID.String()+"/"+metric))
}

// Scorer scores a window of readings (the AI inference service;
// *inference.Client is the real adapter). An error wrapping
// inference.ErrUnavailable means "try again later"; *inference.RejectedError
// means the window itself is refused.
type Scorer interface {
	Score(ctx context.Context, req inference.Request) (inference.Result, error)
}

// Config of a Detector.
type Config struct {
	Window   int    // reference readings kept per device+metric (ANOMALY_WINDOW)
	Topic    string // anomalies topic (TOPIC_ANOMALIES)
	MaxKeys  int    // device+metric windows kept in memory, default 100000
	Consumer string // processed_messages key, default ConsumerName
}

// Validate checks the config and fills defaults.
func (c *Config) Validate() error {
	if c.Window < 1 || c.Window > MaxPoints-1 {
		return fmt.Errorf("detector window %d: use 1..%d", c.Window, MaxPoints-1)
	}
	if c.Topic == "" {
		return errors.New("detector: anomalies topic is empty")
	}
	if c.MaxKeys <= 0 {
		c.MaxKeys = 100000
	}
	if c.Consumer == "" {
		c.Consumer = ConsumerName
	}
	return nil
}

// Message is one telemetry.v1 record value.
type Message struct {
	Value     []byte
	Partition int32
	Offset    int64
}

// Event is anomaly-event.schema.json, the anomalies.v1 record value.
type Event struct {
	EventID        uuid.UUID       `json:"event_id"`
	Type           string          `json:"type"`
	DeviceID       string          `json:"device_id"`
	Version        int64           `json:"version"`
	Metric         string          `json:"metric"`
	TS             time.Time       `json:"ts"`
	Value          float64         `json:"value"`
	Score          float64         `json:"score"`
	ReadingEventID uuid.UUID       `json:"reading_event_id"`
	Model          inference.Model `json:"model"`
	DetectedAt     time.Time       `json:"detected_at"`
}

type telemetryEvent struct {
	EventID  uuid.UUID          `json:"event_id"`
	DeviceID string             `json:"device_id"`
	TS       time.Time          `json:"ts"`
	Metrics  map[string]float64 `json:"metrics"`
}

type key struct{ device, metric string }

type point struct {
	ts    time.Time
	value float64
}

type reading struct {
	point
	eventID uuid.UUID
	fresh   bool
}

// Detector turns telemetry into anomalies. Apply is called by one
// goroutine at a time (the consumer loop).
type Detector struct {
	pool   *pgxpool.Pool
	events *eventstore.Store
	scorer Scorer
	val    *contracts.Validator
	log    *slog.Logger
	cfg    Config
	now    func() time.Time

	mu      sync.Mutex
	windows map[key][]point // oldest first, at most cfg.Window
	stalled atomic.Bool
}

// New returns a detector; cfg is validated.
func New(pool *pgxpool.Pool, events *eventstore.Store, scorer Scorer, val *contracts.Validator, cfg Config, log *slog.Logger) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Detector{pool: pool, events: events, scorer: scorer, val: val, log: log.With("component", "anomaly-detector"), cfg: cfg, now: time.Now, windows: map[key][]point{}}, nil
}

// Apply judges the readings of msgs (one poll, in partition order) and
// stores the new anomalies. It returns the number stored. An error (scorer
// unavailable, database) changes nothing, windows included: the caller
// retries the same msgs and must not commit their offsets.
func (d *Detector) Apply(ctx context.Context, msgs []Message) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	events := make([]telemetryEvent, 0, len(msgs))
	for _, m := range msgs {
		if err := d.val.Validate(contracts.TelemetryEvent, m.Value); err != nil {
			d.log.Error("skipping invalid telemetry event", "partition", m.Partition, "offset", m.Offset, "err", err)
			continue
		}
		var e telemetryEvent
		if err := json.Unmarshal(m.Value, &e); err != nil {
			d.log.Error("skipping undecodable telemetry event", "partition", m.Partition, "offset", m.Offset, "err", err)
			continue
		}
		events = append(events, e)
	}
	if len(events) == 0 {
		return 0, nil
	}
	seen, err := d.processed(ctx, events)
	if err != nil {
		return 0, err
	}
	// Readings per device+metric in delivery order; a repeat inside the poll
	// is not fresh twice.
	byKey := map[key][]reading{}
	freshIDs := map[uuid.UUID]bool{}
	for _, e := range events {
		fresh := !seen[e.EventID] && !freshIDs[e.EventID]
		if fresh {
			freshIDs[e.EventID] = true
		}
		for m, v := range e.Metrics {
			k := key{e.DeviceID, m}
			byKey[k] = append(byKey[k], reading{point: point{ts: e.TS.UTC(), value: v}, eventID: e.EventID, fresh: fresh})
		}
	}
	keys := make([]key, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].device != keys[j].device {
			return keys[i].device < keys[j].device
		}
		return keys[i].metric < keys[j].metric
	})

	next := make(map[key][]point, len(keys))
	var found []Event
	for _, k := range keys {
		win, err := d.window(ctx, k, byKey[k][0].ts)
		if err != nil {
			return 0, err
		}
		w, anomalies, err := d.judge(ctx, k, win, byKey[k])
		if err != nil {
			return 0, err
		}
		next[k] = w
		found = append(found, anomalies...)
	}
	ids := make([]string, 0, len(freshIDs))
	for id := range freshIDs {
		ids = append(ids, id.String())
	}
	sort.Strings(ids)
	var stored int
	for attempt := 0; ; attempt++ {
		stored, err = d.store(ctx, ids, found)
		if err == nil || !errors.Is(err, eventstore.ErrDuplicate) || attempt == 2 {
			break
		}
	}
	if err != nil {
		return 0, err
	}
	for k, w := range next {
		d.windows[k] = w
	}
	d.evict()
	return stored, nil
}

// processed returns which event ids are already recorded.
func (d *Detector) processed(ctx context.Context, events []telemetryEvent) (map[uuid.UUID]bool, error) {
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.EventID.String()
	}
	rows, err := d.pool.Query(ctx, `SELECT message_id FROM processed_messages WHERE consumer = $1 AND message_id = ANY($2::text[])`, d.cfg.Consumer, ids)
	if err != nil {
		return nil, fmt.Errorf("read processed_messages: %w", err)
	}
	done, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read processed_messages: %w", err)
	}
	out := make(map[uuid.UUID]bool, len(done))
	for _, s := range done {
		if id, err := uuid.Parse(s); err == nil {
			out[id] = true
		}
	}
	return out, nil
}

// window returns the reference window of k: from memory, or rebuilt from
// the readings projection (readings strictly before first).
func (d *Detector) window(ctx context.Context, k key, first time.Time) ([]point, error) {
	if w, ok := d.windows[k]; ok {
		return w, nil
	}
	rows, err := d.pool.Query(ctx, `
		SELECT ts, value FROM readings
		WHERE device_id = $1 AND metric = $2 AND ts < $3
		ORDER BY ts DESC LIMIT $4`, k.device, k.metric, first, d.cfg.Window)
	if err != nil {
		return nil, fmt.Errorf("rebuild window %s/%s: %w", k.device, k.metric, err)
	}
	w, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (point, error) {
		var p point
		err := r.Scan(&p.ts, &p.value)
		p.ts = p.ts.UTC()
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("rebuild window %s/%s: %w", k.device, k.metric, err)
	}
	for i, j := 0, len(w)-1; i < j; i, j = i+1, j-1 {
		w[i], w[j] = w[j], w[i]
	}
	return w, nil
}

// judge scores the fresh readings of rs against win and returns the next
// window and the anomalies among the fresh readings.
func (d *Detector) judge(ctx context.Context, k key, win []point, rs []reading) ([]point, []Event, error) {
	seq := make([]reading, 0, len(win)+len(rs))
	for _, p := range win {
		seq = append(seq, reading{point: p})
	}
	lastTS := func() time.Time {
		if len(seq) == 0 {
			return time.Time{}
		}
		return seq[len(seq)-1].ts
	}
	for _, r := range rs {
		if len(seq) > 0 && !r.ts.After(lastTS()) {
			if r.fresh {
				d.log.Debug("reading not judged: ts not after the window's last", "device_id", k.device, "metric", k.metric, "event_id", r.eventID, "ts", r.ts)
			}
			continue
		}
		seq = append(seq, r)
	}
	var out []Event
	// Score in chunks: up to Window reference points, then new points, at
	// most MaxPoints per request. Only chunks with a fresh reading are sent.
	start := len(win) // first point not yet judged
	for start < len(seq) {
		end := min(len(seq), start+MaxPoints-d.cfg.Window)
		hasFresh := false
		for _, r := range seq[start:end] {
			hasFresh = hasFresh || r.fresh
		}
		if hasFresh {
			from := max(0, start-d.cfg.Window)
			req := inference.Request{DeviceID: k.device, Metric: k.metric, Points: make([]inference.Point, 0, end-from)}
			for _, r := range seq[from:end] {
				req.Points = append(req.Points, inference.Point{TS: r.ts, Value: r.value})
			}
			res, err := d.scorer.Score(ctx, req)
			var rej *inference.RejectedError
			switch {
			case errors.As(err, &rej):
				// Retrying cannot help: log loudly, judge nothing of this chunk.
				d.log.Error("scorer rejected a window; its readings are not judged", "device_id", k.device, "metric", k.metric, "points", len(req.Points), "err", err)
			case err != nil:
				return nil, nil, fmt.Errorf("score %s/%s: %w", k.device, k.metric, err)
			default:
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
						ReadingEventID: r.eventID, Model: res.Model, DetectedAt: now,
					})
				}
			}
		}
		start = end
	}
	w := make([]point, 0, d.cfg.Window)
	for _, r := range seq[max(0, len(seq)-d.cfg.Window):] {
		w = append(w, r.point)
	}
	return w, out, nil
}

// store records the fresh ids and, for those this transaction recorded,
// their anomalies: events (the relay publishes them on the anomalies topic)
// and anomalies rows.
func (d *Detector) store(ctx context.Context, ids []string, found []Event) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	var stored int
	var logged []Event
	devices := make([]string, 0, len(found))
	for _, e := range found {
		devices = append(devices, e.DeviceID)
	}
	err := d.events.Write(ctx, devices, func(tx *eventstore.Tx) error {
		stored, logged = 0, nil
		rows, err := tx.Query(ctx, `
			INSERT INTO processed_messages (consumer, message_id)
			SELECT $1, id FROM unnest($2::text[]) AS t(id)
			ON CONFLICT DO NOTHING RETURNING message_id`, d.cfg.Consumer, ids)
		if err != nil {
			return err
		}
		fresh, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		mine := make(map[string]bool, len(fresh))
		for _, id := range fresh {
			mine[id] = true
		}
		var todo []Event
		for _, e := range found {
			if mine[e.ReadingEventID.String()] {
				todo = append(todo, e)
			}
		}
		if len(todo) == 0 {
			return nil
		}
		aids := make([]uuid.UUID, len(todo))
		for i, e := range todo {
			aids[i] = e.EventID
		}
		exists, err := tx.Existing(ctx, aids)
		if err != nil {
			return err
		}
		evs := make([]eventstore.Event, 0, len(todo))
		keep := todo[:0]
		for _, e := range todo {
			if exists[e.EventID] {
				continue
			}
			p, _ := json.Marshal(map[string]any{
				"metric": e.Metric, "ts": e.TS, "value": e.Value, "score": e.Score,
				"reading_event_id": e.ReadingEventID, "model": e.Model, "detected_at": e.DetectedAt,
			})
			evs = append(evs, eventstore.Event{EventID: e.EventID, StreamID: e.DeviceID, Type: eventstore.AnomalyDetected,
				Topic: d.cfg.Topic, Payload: p, RecordedAt: e.DetectedAt})
			keep = append(keep, e)
		}
		if len(evs) == 0 {
			return nil
		}
		if err := tx.Append(ctx, evs); err != nil {
			return err
		}
		rowsOut := make([][]any, len(keep))
		for i := range keep {
			keep[i].Version = evs[i].Version
			if err := d.val.Validate(contracts.AnomalyEvent, eventstore.Envelope(nil, evs[i])); err != nil {
				return fmt.Errorf("anomaly event: %w", err)
			}
			e := keep[i]
			rowsOut[i] = []any{e.EventID, e.DeviceID, e.Metric, e.TS, e.Value, e.Score, e.ReadingEventID, e.Model.Name, e.Model.Version, e.DetectedAt}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"anomalies"},
			[]string{"event_id", "device_id", "metric", "ts", "value", "score", "reading_event_id", "model_name", "model_version", "detected_at"},
			pgx.CopyFromRows(rowsOut)); err != nil {
			return fmt.Errorf("copy anomalies: %w", err)
		}
		stored = len(keep)
		logged = keep
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store anomalies: %w", err)
	}
	for _, e := range logged {
		d.log.Info("anomaly detected", "device_id", e.DeviceID, "metric", e.Metric, "ts", e.TS, "value", e.Value, "score", e.Score, "event_id", e.EventID, "version", e.Version)
	}
	return stored, nil
}

// evict keeps at most MaxKeys windows; an evicted one is rebuilt from the
// readings projection when its key comes back.
func (d *Detector) evict() {
	for k := range d.windows {
		if len(d.windows) <= d.cfg.MaxKeys {
			return
		}
		delete(d.windows, k)
	}
}
