// Package config loads the monolith's settings from the environment, with
// defaults equal to the repository's .env.example.
package config

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config is every setting of the monolith.
type Config struct {
	BindHost      string
	IngestionPort int
	QueryPort     int
	ActionsPort   int

	PostgresHost     string
	PostgresPort     int
	PostgresUser     string
	PostgresPassword string
	PostgresDB       string

	KafkaHost          string
	KafkaPort          int
	TopicTelemetry     string
	TopicTelemetryDLQ  string
	TopicAnomalies     string
	KafkaPartitions    int
	QueryConsumerGroup string

	MQTTHost       string
	MQTTPort       int
	MQTTClientID   string
	MQTTShareGroup string

	LogLevel        slog.Level
	ShutdownTimeout time.Duration

	OutboxPollInterval time.Duration
	OutboxBatchSize    int

	AIInferenceHost    string
	AIInferencePort    int
	AIInferenceTimeout time.Duration

	AnomalyConsumerGroup string
	AnomalyWindow        int
	ActionsConsumerGroup string
	// AnomalyCommandRules maps a metric to the command issued when one of
	// its readings is an anomaly (ANOMALY_COMMAND_RULES).
	AnomalyCommandRules map[string]string
}

// Load reads the settings through getenv (os.Getenv in production). An
// unset or empty variable takes its default. The error names the key, the
// value and the fix.
func Load(getenv func(string) string) (Config, error) {
	l := loader{getenv: getenv}
	c := Config{
		BindHost:           l.host("APP_BIND_HOST", "127.0.0.1"),
		IngestionPort:      l.port("INGESTION_PORT", 8080),
		QueryPort:          l.port("QUERY_PORT", 8081),
		ActionsPort:        l.port("ACTIONS_PORT", 8082),
		PostgresHost:       l.host("POSTGRES_HOST", "127.0.0.1"),
		PostgresPort:       l.port("POSTGRES_PORT", 5432),
		PostgresUser:       l.name("POSTGRES_USER", "platform"),
		PostgresPassword:   l.str("POSTGRES_PASSWORD", "platform"),
		PostgresDB:         l.name("POSTGRES_DB", "platform"),
		KafkaHost:          l.host("KAFKA_HOST", "127.0.0.1"),
		KafkaPort:          l.port("KAFKA_PORT", 9092),
		TopicTelemetry:     l.topic("TOPIC_TELEMETRY", "telemetry.v1"),
		TopicTelemetryDLQ:  l.topic("TOPIC_TELEMETRY_DLQ", "telemetry.dlq"),
		TopicAnomalies:     l.topic("TOPIC_ANOMALIES", "anomalies.v1"),
		KafkaPartitions:    l.intRange("KAFKA_TOPIC_PARTITIONS", 3, 1, 1000),
		QueryConsumerGroup: l.name("QUERY_CONSUMER_GROUP", "platform-query"),
		MQTTHost:           l.host("MQTT_HOST", "127.0.0.1"),
		MQTTPort:           l.port("MQTT_PORT", 1883),
		MQTTClientID:       l.name("MQTT_CLIENT_ID", AutoClientID),
		MQTTShareGroup:     l.optName("MQTT_SHARE_GROUP", "platform"),
		LogLevel:           l.level("LOG_LEVEL", slog.LevelInfo),
		ShutdownTimeout:    l.duration("SHUTDOWN_TIMEOUT", 10*time.Second),
		OutboxPollInterval: l.duration("OUTBOX_POLL_INTERVAL", 500*time.Millisecond),
		OutboxBatchSize:    l.intRange("OUTBOX_BATCH_SIZE", 1000, 1, 10000),
		AIInferenceHost:    l.host("AI_INFERENCE_HOST", "127.0.0.1"),
		AIInferencePort:    l.port("AI_INFERENCE_PORT", 8090),
		AIInferenceTimeout: l.duration("AI_INFERENCE_TIMEOUT", 5*time.Second),

		AnomalyConsumerGroup: l.name("ANOMALY_CONSUMER_GROUP", "anomaly-detector"),
		AnomalyWindow:        l.intRange("ANOMALY_WINDOW", 64, 1, 4000),
		ActionsConsumerGroup: l.name("ACTIONS_CONSUMER_GROUP", "platform-actions"),
		AnomalyCommandRules:  l.rules("ANOMALY_COMMAND_RULES", "temperature:cooldown"),
	}
	if l.err != nil {
		return Config{}, l.err
	}
	ports := map[int]string{}
	for _, p := range []struct {
		key  string
		port int
	}{{"INGESTION_PORT", c.IngestionPort}, {"QUERY_PORT", c.QueryPort}, {"ACTIONS_PORT", c.ActionsPort}} {
		if other, dup := ports[p.port]; dup {
			return Config{}, fmt.Errorf("invalid setting %s=%d: same port as %s; give each server its own port", p.key, p.port, other)
		}
		ports[p.port] = p.key
	}
	if c.MQTTClientID == AutoClientID {
		host, _ := os.Hostname()
		c.MQTTClientID = InstanceClientID(host, c.IngestionPort)
	}
	return c, nil
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

// LogValue logs the settings with the password masked.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("APP_BIND_HOST", c.BindHost),
		slog.Int("INGESTION_PORT", c.IngestionPort),
		slog.Int("QUERY_PORT", c.QueryPort),
		slog.Int("ACTIONS_PORT", c.ActionsPort),
		slog.String("POSTGRES_HOST", c.PostgresHost),
		slog.Int("POSTGRES_PORT", c.PostgresPort),
		slog.String("POSTGRES_USER", c.PostgresUser),
		slog.String("POSTGRES_PASSWORD", mask(c.PostgresPassword)),
		slog.String("POSTGRES_DB", c.PostgresDB),
		slog.String("KAFKA_HOST", c.KafkaHost),
		slog.Int("KAFKA_PORT", c.KafkaPort),
		slog.String("TOPIC_TELEMETRY", c.TopicTelemetry),
		slog.String("TOPIC_TELEMETRY_DLQ", c.TopicTelemetryDLQ),
		slog.String("TOPIC_ANOMALIES", c.TopicAnomalies),
		slog.Int("KAFKA_TOPIC_PARTITIONS", c.KafkaPartitions),
		slog.String("QUERY_CONSUMER_GROUP", c.QueryConsumerGroup),
		slog.String("MQTT_HOST", c.MQTTHost),
		slog.Int("MQTT_PORT", c.MQTTPort),
		slog.String("MQTT_CLIENT_ID", c.MQTTClientID),
		slog.String("MQTT_SHARE_GROUP", c.MQTTShareGroup),
		slog.String("LOG_LEVEL", c.LogLevel.String()),
		slog.String("SHUTDOWN_TIMEOUT", c.ShutdownTimeout.String()),
		slog.String("OUTBOX_POLL_INTERVAL", c.OutboxPollInterval.String()),
		slog.Int("OUTBOX_BATCH_SIZE", c.OutboxBatchSize),
		slog.String("AI_INFERENCE_HOST", c.AIInferenceHost),
		slog.Int("AI_INFERENCE_PORT", c.AIInferencePort),
		slog.String("AI_INFERENCE_TIMEOUT", c.AIInferenceTimeout.String()),
		slog.String("ANOMALY_CONSUMER_GROUP", c.AnomalyConsumerGroup),
		slog.Int("ANOMALY_WINDOW", c.AnomalyWindow),
		slog.String("ACTIONS_CONSUMER_GROUP", c.ActionsConsumerGroup),
		slog.String("ANOMALY_COMMAND_RULES", FormatRules(c.AnomalyCommandRules)),
	)
}

func mask(s string) string {
	if s == "" {
		return ""
	}
	return "********"
}

type loader struct {
	getenv func(string) string
	err    error
}

func (l *loader) raw(key string) (string, bool) {
	v := strings.TrimSpace(l.getenv(key))
	return v, v != ""
}

func (l *loader) fail(key, value, fix string) {
	if l.err == nil {
		l.err = fmt.Errorf("invalid setting %s=%q: %s", key, value, fix)
	}
}

func (l *loader) str(key, def string) string {
	if v, ok := l.raw(key); ok {
		return v
	}
	return def
}

func (l *loader) host(key, def string) string {
	v, ok := l.raw(key)
	if !ok {
		return def
	}
	if strings.ContainsAny(v, " /:@") && net.ParseIP(v) == nil {
		l.fail(key, v, "use a host name or an IP address without scheme or port, e.g. 127.0.0.1")
	}
	return v
}

func (l *loader) port(key string, def int) int {
	v, ok := l.raw(key)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		l.fail(key, v, "use a TCP port number between 1 and 65535")
		return def
	}
	return n
}

func (l *loader) intRange(key string, def, lo, hi int) int {
	v, ok := l.raw(key)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		l.fail(key, v, fmt.Sprintf("use a whole number between %d and %d", lo, hi))
		return def
	}
	return n
}

func validName(v string) bool {
	for _, r := range v {
		if !(r == '_' || r == '-' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return v != ""
}

func (l *loader) name(key, def string) string {
	v, ok := l.raw(key)
	if !ok {
		return def
	}
	if !validName(v) {
		l.fail(key, v, "use letters, digits, '.', '_' or '-' only")
	}
	return v
}

func (l *loader) optName(key, def string) string {
	v := l.getenv(key)
	if v == "" {
		return def
	}
	if v == "-" || v == "none" {
		return ""
	}
	return l.name(key, def)
}

func (l *loader) topic(key, def string) string {
	v := l.name(key, def)
	if len(v) > 249 || v == "." || v == ".." {
		l.fail(key, v, "a Kafka topic name has 1-249 characters and is not '.' or '..'")
	}
	return v
}

func (l *loader) level(key string, def slog.Level) slog.Level {
	v, ok := l.raw(key)
	if !ok {
		return def
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(v)); err != nil {
		l.fail(key, v, "use one of debug, info, warn, error")
		return def
	}
	return lv
}

func (l *loader) duration(key string, def time.Duration) time.Duration {
	v, ok := l.raw(key)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		// Bare numbers are seconds, as in the .env.example comments.
		if n, nerr := strconv.Atoi(v); nerr == nil && n > 0 {
			return time.Duration(n) * time.Second
		}
		l.fail(key, v, "use a positive Go duration such as 10s or 500ms")
		return def
	}
	return d
}

// FormatRules renders rules as ANOMALY_COMMAND_RULES reads them, sorted.
func FormatRules(rules map[string]string) string {
	if len(rules) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(rules))
	for m, c := range rules {
		parts = append(parts, m+":"+c)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
