package detector

import (
	"platform/internal/contracts"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAnomalyIDIsDeterministicPerReadingAndMetric(t *testing.T) {
	r := uuid.MustParse("0f8fad5b-d9cb-469f-a165-70867728950e")
	assert.Equal(t, AnomalyID(r, "temperature"), AnomalyID(r, "temperature"))
	assert.NotEqual(t, AnomalyID(r, "temperature"), AnomalyID(r, "humidity"))
	assert.NotEqual(t, AnomalyID(r, "temperature"), AnomalyID(uuid.New(), "temperature"))
	assert.Equal(t, uuid.Version(5), AnomalyID(r, "temperature").Version())
}

func TestConfigValidate(t *testing.T) {
	c := Config{Window: 64, Topic: "anomalies.v1"}
	require.NoError(t, c.Validate())
	assert.Equal(t, 100000, c.MaxKeys)
	assert.Equal(t, ConsumerName, c.Consumer)
	for _, bad := range []Config{{Window: 0, Topic: "a"}, {Window: contracts.MaxScorePoints, Topic: "a"}, {Window: 64}} {
		assert.Error(t, bad.Validate(), "%+v", bad)
	}
}
