package config

import (
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDefaultsMatchEnvExample(t *testing.T) {
	c, err := Load(env(nil))
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", c.BindHost)
	assert.Equal(t, 8080, c.IngestionPort)
	assert.Equal(t, 8081, c.QueryPort)
	assert.Equal(t, 8082, c.ActionsPort)
	assert.Equal(t, "postgres://platform:platform@127.0.0.1:5432/platform", c.PostgresDSN())
	assert.Equal(t, "127.0.0.1:9092", c.KafkaBroker())
	assert.Equal(t, "tcp://127.0.0.1:1883", c.MQTTBroker())
	assert.Equal(t, "telemetry.v1", c.TopicTelemetry)
	assert.Equal(t, "telemetry.dlq", c.TopicTelemetryDLQ)
	assert.Equal(t, "anomalies.v1", c.TopicAnomalies)
	assert.Equal(t, slog.LevelInfo, c.LogLevel)
	assert.Equal(t, 10*time.Second, c.ShutdownTimeout)
	assert.Equal(t, 8090, c.AIInferencePort)
}

func TestOverrides(t *testing.T) {
	c, err := Load(env(map[string]string{"QUERY_PORT": "9081", "LOG_LEVEL": "debug", "SHUTDOWN_TIMEOUT": "3", "POSTGRES_PASSWORD": "p w@x", "MQTT_SHARE_GROUP": "none"}))
	require.NoError(t, err)
	assert.Equal(t, 9081, c.QueryPort)
	assert.Equal(t, slog.LevelDebug, c.LogLevel)
	assert.Equal(t, 3*time.Second, c.ShutdownTimeout)
	assert.Equal(t, "", c.MQTTShareGroup)
	assert.Contains(t, c.PostgresDSN(), "p%20w%40x")
}

func TestBadValuesNameKeyValueAndFix(t *testing.T) {
	cases := map[string][2]string{
		"INGESTION_PORT":   {"80a", "TCP port"},
		"POSTGRES_PORT":    {"70000", "TCP port"},
		"LOG_LEVEL":        {"loud", "debug, info"},
		"SHUTDOWN_TIMEOUT": {"soon", "duration"},
		"TOPIC_TELEMETRY":  {"bad topic", "letters"},
		"KAFKA_HOST":       {"http://x:9092", "without scheme"},
	}
	for key, c := range cases {
		t.Run(key, func(t *testing.T) {
			_, err := Load(env(map[string]string{key: c[0]}))
			require.Error(t, err)
			msg := err.Error()
			assert.Contains(t, msg, key)
			assert.Contains(t, msg, c[0])
			assert.Contains(t, msg, c[1])
			assert.NotContains(t, msg, "\n")
		})
	}
}

func TestDuplicatePorts(t *testing.T) {
	_, err := Load(env(map[string]string{"QUERY_PORT": "8080"}))
	require.ErrorContains(t, err, "QUERY_PORT")
}

func TestLogValueMasksPassword(t *testing.T) {
	c, err := Load(env(map[string]string{"POSTGRES_PASSWORD": "s3cret"}))
	require.NoError(t, err)
	var b strings.Builder
	slog.New(slog.NewJSONHandler(&b, nil)).Info("config", "config", c)
	assert.NotContains(t, b.String(), "s3cret")
	assert.Contains(t, b.String(), `"POSTGRES_PASSWORD":"********"`)
}

// TestDefaultsEqualEnvExample loads the repository's .env.example and
// requires the same config as the built-in defaults, and every key the
// monolith reads to be documented there.
func TestDefaultsEqualEnvExample(t *testing.T) {
	b, err := os.ReadFile("../../../../.env.example")
	require.NoError(t, err)
	file := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, line)
		file[k] = v
	}
	fromFile, err := Load(func(k string) string { return file[k] })
	require.NoError(t, err)
	defaults, err := Load(env(nil))
	require.NoError(t, err)
	assert.Equal(t, defaults, fromFile)

	var read []string
	_, _ = Load(func(k string) string { read = append(read, k); return "" })
	for _, k := range read {
		_, ok := file[k]
		assert.True(t, ok, "%s is read by the monolith but missing from .env.example", k)
	}
}

func TestAnomalyCommandRules(t *testing.T) {
	c, err := Load(env(nil))
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"temperature": "cooldown"}, c.AnomalyCommandRules)
	assert.Equal(t, "anomaly-detector", c.AnomalyConsumerGroup)
	assert.Equal(t, 64, c.AnomalyWindow)

	c, err = Load(env(map[string]string{"ANOMALY_COMMAND_RULES": " temperature:cooldown , humidity:vent.open"}))
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"temperature": "cooldown", "humidity": "vent.open"}, c.AnomalyCommandRules)
	assert.Equal(t, "humidity:vent.open,temperature:cooldown", FormatRules(c.AnomalyCommandRules))

	c, err = Load(env(map[string]string{"ANOMALY_COMMAND_RULES": "none"}))
	require.NoError(t, err)
	assert.Empty(t, c.AnomalyCommandRules)

	for _, bad := range []string{"temperature", "temperature:", ":cooldown", "temp:1cool", "a:b,a:c", "temp erature:cooldown"} {
		_, err := Load(env(map[string]string{"ANOMALY_COMMAND_RULES": bad}))
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "ANOMALY_COMMAND_RULES")
		assert.Contains(t, err.Error(), "metric:command")
		assert.NotContains(t, err.Error(), "\n")
	}
	_, err = Load(env(map[string]string{"ANOMALY_COMMAND_RULES": "a:b,a:c"}))
	assert.ErrorContains(t, err, "appears twice")
}

func TestMQTTClientIDPerInstance(t *testing.T) {
	c, err := Load(func(k string) string { return map[string]string{"INGESTION_PORT": "9180"}[k] })
	require.NoError(t, err)
	host, _ := os.Hostname()
	assert.Equal(t, InstanceClientID(host, 9180), c.MQTTClientID, "auto by default")
	assert.NotEqual(t, InstanceClientID("h", 8080), InstanceClientID("h", 9080), "two instances on one host")
	assert.Equal(t, "platform-my-box.lan-8080", InstanceClientID("my box.lan", 8080))
	c, err = Load(func(k string) string { return map[string]string{"MQTT_CLIENT_ID": "fixed"}[k] })
	require.NoError(t, err)
	assert.Equal(t, "fixed", c.MQTTClientID)
}
