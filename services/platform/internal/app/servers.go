package app

import (
	"net/http"

	"platform/internal/httpx"
	"platform/internal/tracing"
)

// server is one of the monolith's HTTP servers.
type server struct {
	name    string                          // in log lines and errors
	port    string                          // the key of the setting it listens on
	handler func(*application) http.Handler // its routes, from the application's parts
}

// servers are the monolith's HTTP servers, in the order they bind: the one
// list that listen binds (before anything connects), run serves, and the
// supervisor's readiness asks (devenv reads the x-server mark of each port
// setting in schemas/settings.schema.json; servers_test.go holds the two
// together). To add a server, see the README's "Add a server".
var servers = []server{
	{"ingestion", "INGESTION_PORT", (*application).ingestionHandler},
	{"query", "QUERY_PORT", (*application).queryHandler},
	{"actions", "ACTIONS_PORT", (*application).actionsHandler},
}

// Each handler answers /readyz with the checks of the dependencies its
// routes use, bounds every request to REQUEST_TIMEOUT (then 503) and
// traces it as its server's span (continuing an incoming traceparent).

func (a *application) ingestionHandler() http.Handler {
	return a.tracing.Handler(tracing.Ingestion, httpx.Bound(a.requestTimeout, a.ingestion.Handler(map[string]httpx.Check{
		"postgres": a.infra.pingPostgres, "kafka": a.infra.pingKafka, "mqtt": a.mq.Ping})))
}

func (a *application) queryHandler() http.Handler {
	return a.tracing.Handler(tracing.Query, httpx.Bound(a.requestTimeout, a.query.Handler(map[string]httpx.Check{
		"postgres": a.infra.pingPostgres, "kafka": a.infra.pingKafka, "inference": a.scorer.Ping})))
}

func (a *application) actionsHandler() http.Handler {
	return a.tracing.Handler(tracing.Actions, httpx.Bound(a.requestTimeout, a.actions.Handler(map[string]httpx.Check{
		"postgres": a.infra.pingPostgres, "mqtt": a.mq.Ping})))
}
