// Package config loads the monolith's settings from the environment. Each
// setting is one tagged field of Config; its key, default, range and secret
// flag are declared in schemas/settings.schema.json, which the tags follow
// (declared_test.go fails when they differ) and whose pattern, enum and
// length limits each value is checked against at start.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/go-playground/validator/v10"
)

// Config is every setting of the monolith. Tags: env (key), envDefault,
// validate (range of a number) and secret (masked in logs).
type Config struct {
	BindHost      string `env:"APP_BIND_HOST" envDefault:"127.0.0.1"`
	IngestionPort int    `env:"INGESTION_PORT" envDefault:"8080" validate:"min=1,max=65535"`
	QueryPort     int    `env:"QUERY_PORT" envDefault:"8081" validate:"min=1,max=65535"`
	ActionsPort   int    `env:"ACTIONS_PORT" envDefault:"8082" validate:"min=1,max=65535"`

	PostgresHost     string `env:"POSTGRES_HOST" envDefault:"127.0.0.1"`
	PostgresPort     int    `env:"POSTGRES_PORT" envDefault:"5432" validate:"min=1,max=65535"`
	PostgresUser     string `env:"POSTGRES_USER" envDefault:"platform"`
	PostgresPassword string `env:"POSTGRES_PASSWORD" envDefault:"platform" secret:"true"`
	PostgresDB       string `env:"POSTGRES_DB" envDefault:"platform"`

	KafkaHost          string `env:"KAFKA_HOST" envDefault:"127.0.0.1"`
	KafkaPort          int    `env:"KAFKA_PORT" envDefault:"9092" validate:"min=1,max=65535"`
	TopicTelemetry     string `env:"TOPIC_TELEMETRY" envDefault:"telemetry.v1"`
	TopicTelemetryDLQ  string `env:"TOPIC_TELEMETRY_DLQ" envDefault:"telemetry.dlq"`
	TopicAnomalies     string `env:"TOPIC_ANOMALIES" envDefault:"anomalies.v1"`
	KafkaPartitions    int    `env:"KAFKA_TOPIC_PARTITIONS" envDefault:"3" validate:"min=1,max=64"`
	QueryConsumerGroup string `env:"QUERY_CONSUMER_GROUP" envDefault:"platform-query"`

	MQTTHost string `env:"MQTT_HOST" envDefault:"127.0.0.1"`
	MQTTPort int    `env:"MQTT_PORT" envDefault:"1883" validate:"min=1,max=65535"`
	// MQTTClientID "auto" becomes InstanceClientID of this instance.
	MQTTClientID string `env:"MQTT_CLIENT_ID" envDefault:"auto"`
	// MQTTShareGroup is empty (no shared subscription) when set to "none" or "-".
	MQTTShareGroup string `env:"MQTT_SHARE_GROUP" envDefault:"platform"`

	LogLevel        slog.Level    `env:"LOG_LEVEL" envDefault:"info"`
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"10s"`
	// RequestTimeout bounds an HTTP request and an MQTT intake batch.
	RequestTimeout time.Duration `env:"REQUEST_TIMEOUT" envDefault:"5s"`

	OutboxPollInterval time.Duration `env:"OUTBOX_POLL_INTERVAL" envDefault:"500ms"`
	OutboxBatchSize    int           `env:"OUTBOX_BATCH_SIZE" envDefault:"1000" validate:"min=1,max=10000"`

	AIInferenceHost    string        `env:"AI_INFERENCE_HOST" envDefault:"127.0.0.1"`
	AIInferencePort    int           `env:"AI_INFERENCE_PORT" envDefault:"8090" validate:"min=1,max=65535"`
	AIInferenceTimeout time.Duration `env:"AI_INFERENCE_TIMEOUT" envDefault:"5s"`

	AnomalyConsumerGroup string `env:"ANOMALY_CONSUMER_GROUP" envDefault:"anomaly-detector"`
	AnomalyWindow        int    `env:"ANOMALY_WINDOW" envDefault:"64" validate:"min=1,max=4000"`
	ActionsConsumerGroup string `env:"ACTIONS_CONSUMER_GROUP" envDefault:"platform-actions"`
	// AnomalyCommandRules maps a metric to the command issued when one of
	// its readings is an anomaly.
	AnomalyCommandRules Rules `env:"ANOMALY_COMMAND_RULES" envDefault:"temperature:cooldown"`
}

var validate = func() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string { return key(f) })
	return v
}()

// Load reads the settings through getenv (os.Getenv in production). An
// unset or empty variable takes its default. The error is one line naming
// the key, the value and the fix.
func Load(getenv func(string) string) (Config, error) {
	raw := map[string]string{}
	for _, f := range fields() {
		k := key(f)
		v := strings.TrimSpace(getenv(k))
		if v == "" {
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
	if c.MQTTShareGroup == "none" || c.MQTTShareGroup == "-" {
		c.MQTTShareGroup = ""
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
	switch {
	case hasLo && hasHi:
		return fmt.Sprintf("use a whole number between %s and %s", lo, hi)
	case hasLo:
		return "use a whole number of at least " + lo
	case hasHi:
		return "use a whole number of at most " + hi
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

func distinctPorts(c Config) error {
	seen := map[int]string{}
	for _, p := range []struct {
		key  string
		port int
	}{{"INGESTION_PORT", c.IngestionPort}, {"QUERY_PORT", c.QueryPort}, {"ACTIONS_PORT", c.ActionsPort}} {
		if other, dup := seen[p.port]; dup {
			return fmt.Errorf("invalid setting %s=%d: same port as %s; give each server its own port", p.key, p.port, other)
		}
		seen[p.port] = p.key
	}
	return nil
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

// Addr is the listen address of a server port.
func (c Config) Addr(port int) string { return net.JoinHostPort(c.BindHost, strconv.Itoa(port)) }
