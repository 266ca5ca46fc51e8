package ingestion

import (
	"encoding/json"
	"errors"
	"time"

	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"platform/ingestion/client"
	"platform/internal/contracts"
	"platform/internal/eventstore"
	"platform/internal/httpx"
	"platform/internal/mqttx"
	"platform/internal/tracing"
)

// MaxBodyBytes is the largest accepted request body.
const MaxBodyBytes = 1 << 20

// Deps are what the ingestion server needs: main passes the real adapters,
// the component tests their fakes, through the same constructor.
type Deps struct {
	Events      *eventstore.Store    // where readings become TelemetryReceived events
	Topic       string               // the topic the event relay publishes them to
	DeadLetters DeadLetterPublisher  // MQTT payloads that break their contract
	Validator   *contracts.Validator // the contracts of schemas/
	Tracing     *tracing.Tracing     // the MQTT intake's spans (nil: none)
	Log         *slog.Logger
}

// Server is the ingestion server: its HTTP API and its MQTT intake.
type Server struct {
	svc  *Service
	val  *contracts.Validator
	fast *batchDecoder
	mqtt *MQTTHandler
	log  *slog.Logger
}

// New builds the ingestion server from its dependencies.
func New(d Deps) *Server {
	fast, err := newBatchDecoder()
	if err != nil {
		panic("ingestion: the embedded schemas lack what the batch decoder reads: " + err.Error())
	}
	svc := NewService(d.Events, d.Topic)
	return &Server{svc: svc, val: d.Validator, fast: fast, mqtt: newMQTTHandler(svc, d.Validator, d.DeadLetters, d.Tracing.Tracer(tracing.Ingestion), d.Log), log: d.Log}
}

// Subscription is the MQTT intake of device telemetry.
func (s *Server) Subscription() mqttx.Subscription {
	return mqttx.Subscription{Filter: TelemetryFilter, MaxBatch: mqttMaxBatch, Handler: s.mqtt.Handle}
}

// Handler returns the router with the API and the health endpoints.
func (s *Server) Handler(checks map[string]httpx.Check) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /ingest/v1/telemetry", s.postTelemetry)
	httpx.HandleHealth(mux, "ingestion", checks)
	return httpx.Recover(s.log, mux)
}

func (s *Server) postTelemetry(w http.ResponseWriter, r *http.Request) {
	body, ok := httpx.ReadJSONBody(w, r, MaxBodyBytes)
	if !ok {
		return
	}
	readings, fast := s.fast.decode(body)
	if !fast {
		doc, err := s.val.Decode(contracts.TelemetryBatch, body)
		if err != nil {
			writeValidationError(w, err)
			return
		}
		if readings, err = readingsFromDoc(doc); err != nil {
			httpx.WriteError(w, http.StatusBadRequest, httpx.CodeInvalidBody, err.Error())
			return
		}
	}
	res, err := s.svc.Ingest(r.Context(), readings)
	if err != nil {
		httpx.Failed(w, r, s.log, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, client.IngestResponse{Accepted: res.Accepted, Duplicates: res.Duplicates})
}

func writeValidationError(w http.ResponseWriter, err error) {
	var me *contracts.MalformedError
	if errors.As(err, &me) {
		httpx.WriteError(w, http.StatusBadRequest, httpx.CodeMalformedJSON, me.Error())
		return
	}
	var ie *contracts.InvalidError
	if !errors.As(err, &ie) {
		httpx.WriteError(w, http.StatusBadRequest, httpx.CodeInvalidBody, err.Error())
		return
	}
	for _, v := range ie.Violations {
		if v.Pointer == "/readings" && v.Keyword == "minItems" {
			httpx.WriteError(w, http.StatusBadRequest, httpx.CodeEmptyBatch, "readings must hold at least 1 reading",
				httpx.Detail{Field: "/readings", Message: v.Message})
			return
		}
		if v.Pointer == "/readings" && v.Keyword == "maxItems" {
			httpx.WriteError(w, http.StatusRequestEntityTooLarge, httpx.CodeTooLarge, "readings must hold at most 1000 readings",
				httpx.Detail{Field: "/readings", Message: v.Message})
			return
		}
	}
	details, items := violationDetails(ie.Violations)
	msg := "body does not match telemetry-batch.schema.json"
	if items > 0 {
		msg = fmt.Sprintf("%d reading(s) are invalid", items)
	}
	httpx.WriteError(w, http.StatusBadRequest, httpx.CodeInvalidBody, msg, details...)
}

// violationDetails turns violations into details, with the index of the
// reading for those under /readings/N. It also counts distinct bad items.
func violationDetails(vs []contracts.Violation) ([]httpx.Detail, int) {
	out := make([]httpx.Detail, 0, len(vs))
	items := map[int]bool{}
	for _, v := range vs {
		d := httpx.Detail{Field: v.Pointer, Message: v.Message}
		if rest, ok := strings.CutPrefix(v.Pointer, "/readings/"); ok {
			num, _, _ := strings.Cut(rest, "/")
			if i, err := strconv.Atoi(num); err == nil {
				d.Index = &i
				items[i] = true
			}
		}
		out = append(out, d)
	}
	return out, len(items)
}

// readingsFromDoc converts a validated telemetry-batch document (as decoded
// by the validator, numbers as json.Number) into readings without parsing
// the body a second time. The schema guarantees the shape; the errors here
// are values the schema lets through but Go cannot represent.
func readingsFromDoc(doc any) ([]Reading, error) {
	items := doc.(map[string]any)["readings"].([]any)
	out := make([]Reading, len(items))
	for i, it := range items {
		m := it.(map[string]any)
		id, err := uuid.Parse(m["event_id"].(string))
		if err != nil {
			return nil, fmt.Errorf("readings[%d].event_id: %w", i, err)
		}
		ts, err := time.Parse(time.RFC3339Nano, m["ts"].(string))
		if err != nil {
			return nil, fmt.Errorf("readings[%d].ts: %w", i, err)
		}
		raw := m["metrics"].(map[string]any)
		metrics := make(map[string]float64, len(raw))
		for k, v := range raw {
			f, err := v.(json.Number).Float64()
			if err != nil {
				return nil, fmt.Errorf("readings[%d].metrics.%s: %w", i, k, err)
			}
			metrics[k] = f
		}
		out[i] = Reading{EventID: id, DeviceID: m["device_id"].(string), TS: ts, Metrics: metrics}
	}
	return out, nil
}
