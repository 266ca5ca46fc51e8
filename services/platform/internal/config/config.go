// Package config loads the monolith's settings from the environment. Each
// setting is one tagged field of Config; its key, default, range and secret
// flag are declared in schemas/settings.schema.json (embedded). An unset
// setting takes the schema's default; the tags follow its key, range and
// secret flag (declared_test.go fails when they differ), and each value is
// checked against its pattern, enum and length limits at start.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/go-playground/validator/v10"
)

// Config is every setting of the monolith. Tags: env (key), validate (range
// of a number) and secret (masked in logs); no default: the schema's is the
// one.
type Config struct {
	BindHost string `env:"APP_BIND_HOST"`
	// ExtraBindHosts are comma-separated addresses the servers listen on
	// besides BindHost (ListenAddrs).
	ExtraBindHosts string `env:"APP_EXTRA_BIND_HOSTS"`
	IngestionPort  int    `env:"INGESTION_PORT" validate:"min=1,max=65535"`
	QueryPort      int    `env:"QUERY_PORT" validate:"min=1,max=65535"`
	ActionsPort    int    `env:"ACTIONS_PORT" validate:"min=1,max=65535"`

	PostgresHost     string `env:"POSTGRES_HOST"`
	PostgresPort     int    `env:"POSTGRES_PORT" validate:"min=1,max=65535"`
	PostgresUser     string `env:"POSTGRES_USER"`
	PostgresPassword string `env:"POSTGRES_PASSWORD" secret:"true"`
	PostgresDB       string `env:"POSTGRES_DB"`

	KafkaHost          string `env:"KAFKA_HOST"`
	KafkaPort          int    `env:"KAFKA_PORT" validate:"min=1,max=65535"`
	TopicTelemetry     string `env:"TOPIC_TELEMETRY"`
	TopicTelemetryDLQ  string `env:"TOPIC_TELEMETRY_DLQ"`
	TopicAnomalies     string `env:"TOPIC_ANOMALIES"`
	KafkaPartitions    int    `env:"KAFKA_TOPIC_PARTITIONS" validate:"min=1,max=64"`
	QueryConsumerGroup string `env:"QUERY_CONSUMER_GROUP"`

	MQTTHost string `env:"MQTT_HOST"`
	MQTTPort int    `env:"MQTT_PORT" validate:"min=1,max=65535"`
	// MQTTClientID "auto" becomes InstanceClientID of this instance.
	MQTTClientID string `env:"MQTT_CLIENT_ID"`

	LogLevel        slog.Level    `env:"LOG_LEVEL"`
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT"`
	// RequestTimeout bounds an HTTP request and an MQTT intake batch.
	RequestTimeout time.Duration `env:"REQUEST_TIMEOUT"`

	OutboxPollInterval time.Duration `env:"OUTBOX_POLL_INTERVAL"`
	OutboxBatchSize    int           `env:"OUTBOX_BATCH_SIZE" validate:"min=1,max=10000"`

	AIInferenceHost    string        `env:"AI_INFERENCE_HOST"`
	AIInferencePort    int           `env:"AI_INFERENCE_PORT" validate:"min=1,max=65535"`
	AIInferenceTimeout time.Duration `env:"AI_INFERENCE_TIMEOUT"`

	AnomalyConsumerGroup string `env:"ANOMALY_CONSUMER_GROUP"`
	AnomalyWindow        int    `env:"ANOMALY_WINDOW" validate:"min=1,max=4000"`
	ActionsConsumerGroup string `env:"ACTIONS_CONSUMER_GROUP"`
	// AnomalyCommandRules maps a metric to the command issued when one of
	// its readings is an anomaly.
	AnomalyCommandRules Rules `env:"ANOMALY_COMMAND_RULES"`

	// TraceExportURL receives Zipkin v2 spans; empty: tracing off.
	TraceExportURL   string  `env:"TRACE_EXPORT_URL"`
	TraceSampleRatio float64 `env:"TRACE_SAMPLE_RATIO" validate:"min=0,max=1"`
}

var validate = func() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string { return key(f) })
	return v
}()

// Load reads the settings through getenv (os.Getenv in production). An
// unset or empty variable takes the schema's default. The error is one line
// naming the key, the value and the fix.
func Load(getenv func(string) string) (Config, error) {
	raw := map[string]string{}
	for _, f := range fields() {
		k := key(f)
		v := strings.TrimSpace(getenv(k))
		if v == "" {
			raw[k] = declared[k].defaultText()
			continue
		}
		if fix := declared[k].check(v); fix != "" {
			return Config{}, invalid(k, v, fix)
		}
		raw[k] = v
	}
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Environment: raw}); err != nil {
		return Config{}, parseError(err, raw)
	}
	if err := validate.Struct(c); err != nil {
		return Config{}, rangeError(err, raw)
	}
	if err := distinctPorts(c); err != nil {
		return Config{}, err
	}
	if c.MQTTClientID == AutoClientID {
		host, _ := os.Hostname()
		c.MQTTClientID = InstanceClientID(host, c.IngestionPort)
	}
	return c, nil
}

// fields are Config's settings, in declaration order.
func fields() []reflect.StructField {
	var out []reflect.StructField
	for _, f := range reflect.VisibleFields(reflect.TypeFor[Config]()) {
		if key(f) != "" {
			out = append(out, f)
		}
	}
	return out
}

// key is the environment variable of a field ("" when it has none).
func key(f reflect.StructField) string {
	k, _, _ := strings.Cut(f.Tag.Get("env"), ",")
	return k
}

// secret tells whether a field is masked in logs.
func secret(f reflect.StructField) bool { return f.Tag.Get("secret") == "true" }

// invalid is the one-line error of a refused value; a secret's value is
// never shown.
func invalid(key, value, fix string) error {
	shown := strconv.Quote(value)
	if d := declared[key]; d != nil && d.Secret {
		shown = "(hidden)"
	}
	return fmt.Errorf("invalid setting %s=%s: %s", key, shown, fix)
}

// parseError turns the first error of env.Parse into the one-line form.
func parseError(err error, raw map[string]string) error {
	var pe env.ParseError
	if !errors.As(err, &pe) {
		return err
	}
	f, _ := reflect.TypeFor[Config]().FieldByName(pe.Name)
	k := key(f)
	if fix := rangeFix(f); fix != "" {
		return invalid(k, raw[k], fix)
	}
	// The field's own UnmarshalText (Rules) words its error as the fix.
	return invalid(k, raw[k], pe.Err.Error())
}

// rangeError turns the first range violation into the one-line form.
func rangeError(err error, raw map[string]string) error {
	var ve validator.ValidationErrors
	if !errors.As(err, &ve) || len(ve) == 0 {
		return err
	}
	f, _ := reflect.TypeFor[Config]().FieldByName(ve[0].StructField())
	return invalid(key(f), raw[key(f)], rangeFix(f))
}

// rangeFix states the validate range of a number field ("" without one).
func rangeFix(f reflect.StructField) string {
	r := ranges(f)
	lo, hasLo := r["min"]
	hi, hasHi := r["max"]
	kind := "a whole number"
	if f.Type.Kind() == reflect.Float64 {
		kind = "a number"
	}
	switch {
	case hasLo && hasHi:
		return fmt.Sprintf("use %s between %s and %s", kind, lo, hi)
	case hasLo:
		return fmt.Sprintf("use %s of at least %s", kind, lo)
	case hasHi:
		return fmt.Sprintf("use %s of at most %s", kind, hi)
	}
	return ""
}

// ranges reads a validate tag such as "min=1,max=64" as {min: 1, max: 64}.
func ranges(f reflect.StructField) map[string]string {
	out := map[string]string{}
	for _, rule := range strings.Split(f.Tag.Get("validate"), ",") {
		if name, param, ok := strings.Cut(rule, "="); ok {
			out[name] = param
		}
	}
	return out
}

// distinctPorts refuses two servers on one port.
func distinctPorts(c Config) error {
	seen := map[int]string{}
	for _, f := range fields() {
		k := key(f)
		if declared[k] == nil || declared[k].Server == "" {
			continue
		}
		port, _ := c.Port(k)
		if other, dup := seen[port]; dup {
			return fmt.Errorf("invalid setting %s=%d: same port as %s; give each server its own port", k, port, other)
		}
		seen[port] = k
	}
	return nil
}

// Port is the value of the whole-number setting named portKey (false when
// Config has none): the port a server listens on, looked up by the key its
// errors name.
func (c Config) Port(portKey string) (int, bool) {
	for _, f := range fields() {
		if key(f) == portKey && f.Type.Kind() == reflect.Int {
			return int(reflect.ValueOf(c).FieldByIndex(f.Index).Int()), true
		}
	}
	return 0, false
}

// LogValue logs every setting under its key, secrets masked.
func (c Config) LogValue() slog.Value {
	v := reflect.ValueOf(c)
	var attrs []slog.Attr
	for _, f := range fields() {
		var value any = "********"
		if !secret(f) {
			value = v.FieldByIndex(f.Index).Interface()
		}
		if s, ok := value.(fmt.Stringer); ok {
			value = s.String()
		}
		attrs = append(attrs, slog.Any(key(f), value))
	}
	return slog.GroupValue(attrs...)
}

// PostgresDSN is the pgx connection string (keyword/value form is avoided
// so that passwords with spaces survive).
func (c Config) PostgresDSN() string {
	return PostgresURL(c.PostgresHost, c.PostgresPort, c.PostgresUser, c.PostgresPassword, c.PostgresDB)
}

// PostgresURL builds a postgres:// URL.
func PostgresURL(host string, port int, user, password, db string) string {
	u := url.URL{
		Scheme: "postgres",
		User:   url.UserPassword(user, password),
		Host:   net.JoinHostPort(host, strconv.Itoa(port)),
		Path:   "/" + db,
	}
	return u.String()
}

// AIInferenceURL is the base URL of the AI inference service.
func (c Config) AIInferenceURL() string {
	return "http://" + net.JoinHostPort(c.AIInferenceHost, strconv.Itoa(c.AIInferencePort))
}

// KafkaBroker is host:port of the seed broker.
func (c Config) KafkaBroker() string { return net.JoinHostPort(c.KafkaHost, strconv.Itoa(c.KafkaPort)) }

// MQTTBroker is the paho broker URL.
func (c Config) MQTTBroker() string {
	return "tcp://" + net.JoinHostPort(c.MQTTHost, strconv.Itoa(c.MQTTPort))
}

// ListenAddrs are the addresses a server port listens on: BindHost first,
// then each of ExtraBindHosts not already listed, unless BindHost is a
// wildcard (0.0.0.0, ::), which covers them.
func (c Config) ListenAddrs(port int) []string {
	hosts := []string{c.BindHost}
	wildcard := net.ParseIP(c.BindHost) != nil && net.ParseIP(c.BindHost).IsUnspecified()
	for _, h := range strings.Split(c.ExtraBindHosts, ",") {
		if h = strings.TrimSpace(h); !wildcard && h != "" && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	addrs := make([]string, len(hosts))
	for i, h := range hosts {
		addrs[i] = net.JoinHostPort(h, strconv.Itoa(port))
	}
	return addrs
}
