package config

import (
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func vars(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDefaults(t *testing.T) {
	c, err := Load(vars(nil))
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", c.BindHost)
	assert.Equal(t, 8080, c.IngestionPort)
	assert.Equal(t, 8081, c.QueryPort)
	assert.Equal(t, 8082, c.ActionsPort)
	assert.Equal(t, "postgres://platform:platform@127.0.0.1:5432/platform", c.PostgresDSN())
	assert.Equal(t, "127.0.0.1:9092", c.KafkaBroker())
	assert.Equal(t, "tcp://127.0.0.1:1883", c.MQTTBroker())
	assert.Equal(t, "http://127.0.0.1:8090", c.AIInferenceURL())
	assert.Equal(t, []string{"127.0.0.1:8081"}, c.ListenAddrs(c.QueryPort))
	assert.Equal(t, "telemetry.v1", c.TopicTelemetry)
	assert.Equal(t, "telemetry.dlq", c.TopicTelemetryDLQ)
	assert.Equal(t, "anomalies.v1", c.TopicAnomalies)
	assert.Equal(t, 3, c.KafkaPartitions)
	assert.Equal(t, slog.LevelInfo, c.LogLevel)
	assert.Equal(t, 10*time.Second, c.ShutdownTimeout)
	assert.Equal(t, 500*time.Millisecond, c.OutboxPollInterval)
	assert.Equal(t, 5*time.Second, c.AIInferenceTimeout)
}

func TestOverrides(t *testing.T) {
	c, err := Load(vars(map[string]string{
		"QUERY_PORT": " 9081 ", "LOG_LEVEL": "debug", "SHUTDOWN_TIMEOUT": "3s", "OUTBOX_POLL_INTERVAL": "2m",
		"POSTGRES_PASSWORD": "p w@x", "KAFKA_TOPIC_PARTITIONS": "64", "AI_INFERENCE_HOST": "::1",
	}))
	require.NoError(t, err)
	assert.Equal(t, 9081, c.QueryPort)
	assert.Equal(t, slog.LevelDebug, c.LogLevel)
	assert.Equal(t, 3*time.Second, c.ShutdownTimeout)
	assert.Equal(t, 2*time.Minute, c.OutboxPollInterval)
	assert.Equal(t, 64, c.KafkaPartitions)
	assert.Equal(t, "http://[::1]:8090", c.AIInferenceURL())
	assert.Contains(t, c.PostgresDSN(), "p%20w%40x")
}

func TestExtraBindHostsListenBesideBindHostOnceEach(t *testing.T) {
	c, err := Load(vars(map[string]string{"APP_EXTRA_BIND_HOSTS": "172.17.0.1,127.0.0.1,::1,172.17.0.1"}))
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.0.1:8081", "172.17.0.1:8081", "[::1]:8081"}, c.ListenAddrs(c.QueryPort))
	c, err = Load(vars(map[string]string{"APP_BIND_HOST": "0.0.0.0", "APP_EXTRA_BIND_HOSTS": "172.17.0.1"}))
	require.NoError(t, err)
	assert.Equal(t, []string{"0.0.0.0:8081"}, c.ListenAddrs(c.QueryPort), "the wildcard covers them")
	_, err = Load(vars(map[string]string{"APP_EXTRA_BIND_HOSTS": "172.17.0.1;10.0.0.1"}))
	require.ErrorContains(t, err, `invalid setting APP_EXTRA_BIND_HOSTS="172.17.0.1;10.0.0.1": use a value matching`)
}

func TestEmptyValueTakesTheDefault(t *testing.T) {
	c, err := Load(vars(map[string]string{"QUERY_PORT": "", "SHUTDOWN_TIMEOUT": "  ", "ANOMALY_COMMAND_RULES": ""}))
	require.NoError(t, err)
	assert.Equal(t, 8081, c.QueryPort)
	assert.Equal(t, 10*time.Second, c.ShutdownTimeout)
	assert.Equal(t, Rules{"temperature": "cooldown"}, c.AnomalyCommandRules)
}

func TestBadValuesNameKeyValueAndFix(t *testing.T) {
	cases := []struct{ key, value, fix string }{
		{"KAFKA_TOPIC_PARTITIONS", "0", "use a whole number between 1 and 64"},
		{"KAFKA_TOPIC_PARTITIONS", "65", "use a whole number between 1 and 64"},
		{"INGESTION_PORT", "80a", "use a whole number between 1 and 65535"},
		{"POSTGRES_PORT", "70000", "use a whole number between 1 and 65535"},
		{"OUTBOX_BATCH_SIZE", "1.5", "use a whole number between 1 and 10000"},
		{"LOG_LEVEL", "loud", "use one of debug, info, warn, error"},
		{"LOG_LEVEL", "DEBUG", "use one of debug, info, warn, error"},
		{"SHUTDOWN_TIMEOUT", "10", "use a positive whole number of ms, s or m, such as 10s"},
		{"SHUTDOWN_TIMEOUT", "0s", "use a positive whole number of ms, s or m, such as 10s"},
		{"TOPIC_ANOMALIES", "..", "use a value matching "},
		{"AI_INFERENCE_TIMEOUT", "soon", "such as 5s"},
		{"TOPIC_TELEMETRY", "bad topic", "use a value matching "},
		{"KAFKA_HOST", "http://x:9092", "such as 127.0.0.1"},
		{"POSTGRES_HOST", "db:5432", "such as 127.0.0.1"},
		{"MQTT_HOST", "cafe:1883", "such as 127.0.0.1"},
		{"POSTGRES_USER", "Admin", "use a value matching "},
		{"POSTGRES_DB", strings.Repeat("d", 64), "use at most 63 characters"},
		{"ANOMALY_COMMAND_RULES", "temperature", "use comma-separated metric:command pairs"},
		{"TRACE_SAMPLE_RATIO", "1.5", "use a number between 0 and 1"},
		{"TRACE_SAMPLE_RATIO", "half", "use a number between 0 and 1"},
		{"TRACE_EXPORT_URL", "zipkin:9411", "use a value matching "},
	}
	for _, c := range cases {
		t.Run(c.key+"="+c.value, func(t *testing.T) {
			_, err := Load(vars(map[string]string{c.key: c.value}))
			require.Error(t, err)
			prefix := "invalid setting " + c.key + "=\"" + c.value + "\": "
			assert.True(t, strings.HasPrefix(err.Error(), prefix), "%q does not start with %q", err, prefix)
			assert.Contains(t, err.Error(), c.fix)
			assert.NotContains(t, err.Error(), "\n")
		})
	}
	_, err := Load(vars(map[string]string{"KAFKA_TOPIC_PARTITIONS": "0"}))
	assert.EqualError(t, err, `invalid setting KAFKA_TOPIC_PARTITIONS="0": use a whole number between 1 and 64`)
}

func TestDuplicatePorts(t *testing.T) {
	_, err := Load(vars(map[string]string{"QUERY_PORT": "8080"}))
	assert.EqualError(t, err, "invalid setting QUERY_PORT=8080: same port as INGESTION_PORT; give each server its own port")
}

func TestLogValueShowsEverySettingWithSecretsMasked(t *testing.T) {
	c, err := Load(vars(map[string]string{"POSTGRES_PASSWORD": "s3cret", "ANOMALY_COMMAND_RULES": "humidity:vent,temperature:cooldown"}))
	require.NoError(t, err)
	var b strings.Builder
	slog.New(slog.NewJSONHandler(&b, nil)).Info("starting", "config", c)
	assert.NotContains(t, b.String(), "s3cret")
	var line struct{ Config map[string]any }
	require.NoError(t, json.Unmarshal([]byte(b.String()), &line))
	assert.Equal(t, "********", line.Config["POSTGRES_PASSWORD"])
	assert.Equal(t, "platform", line.Config["POSTGRES_USER"])
	assert.Equal(t, float64(8081), line.Config["QUERY_PORT"])
	assert.Equal(t, "10s", line.Config["SHUTDOWN_TIMEOUT"])
	assert.Equal(t, "INFO", line.Config["LOG_LEVEL"])
	assert.Equal(t, "humidity:vent,temperature:cooldown", line.Config["ANOMALY_COMMAND_RULES"])
	for _, f := range fields() {
		assert.Contains(t, line.Config, key(f))
	}
}

func TestAnomalyCommandRules(t *testing.T) {
	c, err := Load(vars(nil))
	require.NoError(t, err)
	assert.Equal(t, Rules{"temperature": "cooldown"}, c.AnomalyCommandRules)
	assert.Equal(t, "anomaly-detector", c.AnomalyConsumerGroup)
	assert.Equal(t, 64, c.AnomalyWindow)

	c, err = Load(vars(map[string]string{"ANOMALY_COMMAND_RULES": " temperature:cooldown , humidity:vent.open"}))
	require.NoError(t, err)
	assert.Equal(t, Rules{"temperature": "cooldown", "humidity": "vent.open"}, c.AnomalyCommandRules)
	assert.Equal(t, "humidity:vent.open,temperature:cooldown", c.AnomalyCommandRules.String())

	for _, none := range []string{"none", "-"} {
		c, err = Load(vars(map[string]string{"ANOMALY_COMMAND_RULES": none}))
		require.NoError(t, err)
		assert.Empty(t, c.AnomalyCommandRules)
		assert.Equal(t, "none", c.AnomalyCommandRules.String())
	}

	for _, bad := range []string{"temperature", "temperature:", ":cooldown", "temp:1cool", "a:b,a:c", "temp erature:cooldown"} {
		_, err := Load(vars(map[string]string{"ANOMALY_COMMAND_RULES": bad}))
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), `ANOMALY_COMMAND_RULES="`+bad+`"`)
		assert.Contains(t, err.Error(), "metric:command")
		assert.NotContains(t, err.Error(), "\n")
	}
	_, err = Load(vars(map[string]string{"ANOMALY_COMMAND_RULES": "a:b,a:c"}))
	assert.ErrorContains(t, err, "a appears twice")
}

func TestMQTTClientIDPerInstance(t *testing.T) {
	c, err := Load(vars(map[string]string{"INGESTION_PORT": "9180"}))
	require.NoError(t, err)
	host, _ := os.Hostname()
	assert.Equal(t, InstanceClientID(host, 9180), c.MQTTClientID, "auto by default")
	assert.NotEqual(t, InstanceClientID("h", 8080), InstanceClientID("h", 9080), "two instances on one host")
	assert.Equal(t, "platform-my-box.lan-8080", InstanceClientID("my box.lan", 8080))
	c, err = Load(vars(map[string]string{"MQTT_CLIENT_ID": "fixed"}))
	require.NoError(t, err)
	assert.Equal(t, "fixed", c.MQTTClientID)
}

func TestARefusedSecretIsNeverShown(t *testing.T) {
	err := invalid("POSTGRES_PASSWORD", "s3cret value", "use something else")
	assert.EqualError(t, err, "invalid setting POSTGRES_PASSWORD=(hidden): use something else")
	assert.EqualError(t, invalid("POSTGRES_USER", "Admin", "fix"), `invalid setting POSTGRES_USER="Admin": fix`)
}
