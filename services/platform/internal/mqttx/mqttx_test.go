package mqttx

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestMatch(t *testing.T) {
	assert.True(t, Match("devices/+/telemetry", "devices/d1/telemetry"))
	assert.False(t, Match("devices/+/telemetry", "devices/d1/commands/ack"))
	assert.True(t, Match("devices/+/commands/ack", "devices/d1/commands/ack"))
	assert.False(t, Match("devices/+/commands/ack", "devices/d1/commands"))
	assert.True(t, Match("devices/#", "devices/d1/commands"))
	assert.Equal(t, "d1", TopicLevel("devices/d1/telemetry", 1))
}
