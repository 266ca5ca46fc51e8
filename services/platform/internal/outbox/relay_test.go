package outbox

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"platform/internal/relay"
)

func TestConfigDefaultsAndValidate(t *testing.T) {
	c := Config{Sink: SinkMQTT}
	c.Timing.SetDefaults()
	require.NoError(t, c.Validate())
	assert.Equal(t, 1000, c.BatchSize)
	assert.Equal(t, 500*time.Millisecond, c.PollInterval)
	assert.Equal(t, 100*time.Millisecond, c.MinBackoff)
	assert.Equal(t, 10*time.Second, c.MaxBackoff)

	assert.Error(t, Config{Sink: "smtp"}.Validate())
	bad := Config{Sink: SinkMQTT, Timing: relay.Timing{MinBackoff: time.Minute, MaxBackoff: time.Second}}
	assert.Error(t, bad.Validate())
	assert.Equal(t, "outbox_mqtt", Channel(SinkMQTT))
}
