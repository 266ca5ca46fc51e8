// Package detector is the anomaly detector, hosted by the query server: a
// consumer group (ANOMALY_CONSUMER_GROUP, default anomaly-detector) on
// telemetry.v1 that keeps a bounded window of readings per device+metric,
// asks a Scorer (the AI inference service) to score each window with its
// new readings, and for every new anomalous reading appends an
// AnomalyDetected event for anomalies.v1 (the event relay publishes it) and
// an anomalies row in one transaction. Offsets are committed only after that
// transaction (kafkax.Consume); a scorer that is down or slow makes Apply
// fail, so the same records are retried and nothing past them is committed.
//
// Exactly-once effect: a reading is "new" until its event id is recorded
// in processed_messages (consumer "anomaly-detector") by the transaction
// that stores its anomalies; the anomaly's event id is derived from the
// reading's event id and the metric (UUIDv5), so even a race cannot store
// it twice. A redelivered reading only refills the window.
//
// A reading that cannot be scored (its value outside what the scorer
// accepts, score-request.schema.json; or a window the scorer refuses) is
// judged "not scored": recorded in unscored_readings with the reason and
// listed by the anomalies API as skipped, never retried. A telemetry.v1
// record that is not a telemetry event is a *kafkax.PermanentError (to
// telemetry.v1.dlq). Files: window (the per device+metric cache), judge
// (scoring), store (the transaction).
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
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"

	"platform/internal/contracts"
	"platform/internal/eventstore"
	"platform/internal/inference"
	"platform/internal/kafkax"
)

// ConsumerName keys processed_messages for the detector.
const ConsumerName = "anomaly-detector"

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
	// Tracer makes the detector's spans (tracing.Detector); nil: none.
	Tracer trace.Tracer
}

// Validate checks the config and fills defaults.
func (c *Config) Validate() error {
	// A request carries the window and at least one reading to score.
	if c.Window < 1 || c.Window > contracts.MaxScorePoints-1 {
		return fmt.Errorf("detector window %d: use 1..%d", c.Window, contracts.MaxScorePoints-1)
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
	// Trace is the span the detector judges the record under: the scoring
	// call and the anomaly event continue it.
	Trace trace.SpanContext
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

	trace trace.SpanContext // the reading's, stored as the event's trace_context
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
// stores the new anomalies and the readings not scored. It returns the
// number of anomalies stored. An error changes nothing, windows included:
// a *kafkax.PermanentError names a record that is not a telemetry event;
// any other error is transient (scorer unavailable, database) and the
// caller retries the same msgs without committing their offsets.
func (d *Detector) Apply(ctx context.Context, msgs []Message) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	events, err := kafkax.DecodeEach(msgs, func(m Message) (contracts.Telemetry, error) {
		return d.val.DecodeTelemetry(m.Value)
	}, "not a telemetry event")
	if err != nil || len(events) == 0 {
		return 0, err
	}
	seen, err := d.processed(ctx, events)
	if err != nil {
		return 0, err
	}
	byKey, freshIDs := group(events, msgs, seen)
	next := make(map[key][]point, len(byKey))
	var found []Event
	var unscored []Unscored
	for _, k := range sortedKeys(byKey) {
		win, err := d.window(ctx, k, byKey[k][0].ts)
		if err != nil {
			return 0, err
		}
		v, err := d.judge(ctx, k, win, byKey[k])
		if err != nil {
			return 0, err
		}
		next[k] = v.window
		found = append(found, v.anomalies...)
		unscored = append(unscored, v.unscored...)
	}
	stored, err := d.store(ctx, freshIDs, found, unscored)
	if err != nil {
		return 0, err
	}
	d.keep(next)
	return stored, nil
}

// group sorts the readings per device+metric in delivery order, marking
// those not seen before fresh (a repeat inside the poll is not fresh
// twice), and returns the fresh ids, sorted.
func group(events []contracts.Telemetry, msgs []Message, seen map[uuid.UUID]bool) (map[key][]reading, []string) {
	byKey := map[key][]reading{}
	fresh := map[uuid.UUID]bool{}
	for i, e := range events {
		isFresh := !seen[e.EventID] && !fresh[e.EventID]
		if isFresh {
			fresh[e.EventID] = true
		}
		for m, v := range e.Metrics {
			k := key{e.DeviceID, m}
			byKey[k] = append(byKey[k], reading{point: point{ts: e.TS.UTC(), value: v}, eventID: e.EventID, fresh: isFresh, trace: msgs[i].Trace})
		}
	}
	ids := make([]string, 0, len(fresh))
	for id := range fresh {
		ids = append(ids, id.String())
	}
	sort.Strings(ids)
	return byKey, ids
}

func sortedKeys(byKey map[key][]reading) []key {
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
	return keys
}
