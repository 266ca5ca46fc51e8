package actions

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"platform/actions/client"
	"platform/internal/contracts"
	"platform/internal/eventstore"
	"platform/internal/httpx"
	"platform/internal/mqttx"
	"platform/internal/outbox"
	"platform/internal/tracing"
)

// MaxBodyBytes bounds a command request.
const MaxBodyBytes = 64 << 10

// Deps are what the actions server needs: main passes the real adapters,
// the component tests their fakes, through the same constructor.
type Deps struct {
	Pool      *pgxpool.Pool
	Events    *eventstore.Store    // CommandIssued / CommandAcknowledged events
	Relay     outbox.Config        // the command relay's batch, poll and flush settings
	Rules     map[string]string    // metric -> command issued on its anomalies
	Validator *contracts.Validator // the contracts of schemas/
	Tracing   *tracing.Tracing     // spans of the acks, the anomaly rules and the command relay (nil: none)
	Log       *slog.Logger
}

// Server is the actions server: its HTTP API, the MQTT acknowledgements,
// the command relay and the anomalies.v1 rules.
type Server struct {
	svc      *Service
	val      *contracts.Validator
	pool     *pgxpool.Pool
	relayCfg outbox.Config
	rules    *AnomalyRules
	tracing  *tracing.Tracing
	log      *slog.Logger
}

// New builds the actions server from its dependencies.
func New(d Deps) *Server {
	svc := newService(d.Pool, d.Events, d.Validator, d.Tracing.Tracer(tracing.Actions), d.Log)
	return &Server{svc: svc, val: d.Validator, pool: d.Pool, relayCfg: d.Relay, tracing: d.Tracing,
		rules: newAnomalyRules(svc, d.Validator, d.Rules, d.Tracing.Tracer(tracing.Actions), d.Log), log: d.Log}
}

// Service issues and tracks commands.
func (s *Server) Service() *Service { return s.svc }

// CommandRelay publishes the queued commands to pub (run it with Run). It
// is built apart because the MQTT session that publishes also delivers the
// acknowledgements (AckSubscription).
func (s *Server) CommandRelay(pub MQTTPublisher) (*outbox.Relay, error) {
	return newCommandRelay(s.pool, pub, s.relayCfg, s.tracing.Tracer(tracing.CommandRelay), s.log)
}

// AnomalyRules turn anomalies.v1 into commands (run with RunAnomalyConsumer).
func (s *Server) AnomalyRules() *AnomalyRules { return s.rules }

// AckSubscription is the MQTT intake of command acknowledgements.
func (s *Server) AckSubscription() mqttx.Subscription {
	return mqttx.Subscription{Filter: AckFilter, MaxBatch: ackMaxBatch, Handler: ackHandler(s.svc, s.log)}
}

// Handler returns the router with the API and the health endpoints.
func (s *Server) Handler(checks map[string]httpx.Check) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /actions/v1/devices/{id}/commands", s.postCommand)
	mux.HandleFunc("GET /actions/v1/commands/{command_id}", s.getCommand)
	httpx.HandleHealth(mux, "actions", checks)
	return httpx.Recover(s.log, mux)
}

func (s *Server) postCommand(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !contracts.DeviceID.MatchString(id) {
		httpx.WriteError(w, http.StatusBadRequest, httpx.CodeInvalidParam, "invalid device id",
			httpx.Detail{Field: "id", Message: "must match " + contracts.DeviceID.String()})
		return
	}
	body, ok := httpx.ReadJSONBody(w, r, MaxBodyBytes)
	if !ok {
		return
	}
	if err := s.val.Validate(contracts.CommandRequest, body); err != nil {
		var me *contracts.MalformedError
		if errors.As(err, &me) {
			httpx.WriteError(w, http.StatusBadRequest, httpx.CodeMalformedJSON, me.Error())
			return
		}
		var details []httpx.Detail
		var ie *contracts.InvalidError
		if errors.As(err, &ie) {
			for _, v := range ie.Violations {
				details = append(details, httpx.Detail{Field: v.Pointer, Message: v.Message})
			}
		}
		httpx.WriteError(w, http.StatusBadRequest, httpx.CodeInvalidBody, "body does not match command-request.schema.json", details...)
		return
	}
	var req client.CommandRequest
	if err := json.Unmarshal(body, &req); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, httpx.CodeInvalidBody, err.Error())
		return
	}
	cmd, created, err := s.svc.Issue(r.Context(), id, req)
	switch {
	case errors.Is(err, ErrConflict):
		httpx.WriteError(w, http.StatusConflict, httpx.CodeConflict, err.Error())
	case err != nil:
		httpx.Failed(w, r, s.log, err)
	case created:
		w.Header().Set("Location", "/actions/v1/commands/"+cmd.CommandID.String())
		httpx.WriteJSON(w, http.StatusCreated, cmd)
	default:
		httpx.WriteJSON(w, http.StatusOK, cmd)
	}
}

func (s *Server) getCommand(w http.ResponseWriter, r *http.Request) {
	id, err := uuid.Parse(r.PathValue("command_id"))
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, httpx.CodeInvalidParam, "invalid command id",
			httpx.Detail{Field: "command_id", Message: "must be a UUID"})
		return
	}
	cmd, err := s.svc.Get(r.Context(), id)
	switch {
	case errors.Is(err, ErrNotFound):
		httpx.WriteError(w, http.StatusNotFound, httpx.CodeNotFound, "command "+id.String()+" not found")
	case err != nil:
		httpx.Failed(w, r, s.log, err)
	default:
		httpx.WriteJSON(w, http.StatusOK, cmd)
	}
}
