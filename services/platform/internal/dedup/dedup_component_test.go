//go:build component

package dedup_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"platform/internal/dedup"
	"platform/internal/testdb"
)

var db *testdb.DB

func TestMain(m *testing.M) {
	testdb.Run(m, "dedup", &db)
}

func TestPruneDeletesOnlyWhatCannotComeAgain(t *testing.T) {
	ctx := context.Background()
	require.NoError(t, db.Truncate(ctx, "processed_messages"))
	_, err := db.Pool.Exec(ctx, `INSERT INTO processed_messages (consumer, message_id, processed_at) VALUES
		('c', 'old', now() - interval '9 days'), ('c', 'recent', now() - interval '1 day'), ('c', 'now', now())`)
	require.NoError(t, err)
	n, err := dedup.Prune(ctx, db.Pool, dedup.Retention)
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
	var left []string
	rows, err := db.Pool.Query(ctx, `SELECT message_id FROM processed_messages ORDER BY message_id`)
	require.NoError(t, err)
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		left = append(left, s)
	}
	assert.Equal(t, []string{"now", "recent"}, left)
}
