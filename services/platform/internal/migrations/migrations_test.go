package migrations

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAllOrderedAndUnique(t *testing.T) {
	all, err := All()
	require.NoError(t, err)
	require.NotEmpty(t, all)
	for i := 1; i < len(all); i++ {
		require.Greater(t, all[i].Version, all[i-1].Version, all[i].Name)
	}
}
