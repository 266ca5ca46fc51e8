package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRunRejectsBadInput(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	err := run(context.Background(), []string{"frobnicate"}, log)
	require.ErrorContains(t, err, `unknown command "frobnicate"`)
	assert.False(t, errors.As(err, new(settingsError)), "a usage error is not a settings error")
	err = run(context.Background(), []string{"serve", "extra"}, log)
	require.Error(t, err)

	t.Setenv("INGESTION_PORT", "eighty")
	err = run(context.Background(), []string{"migrate"}, log)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `INGESTION_PORT="eighty"`)
	assert.NotContains(t, err.Error(), "\n")
	assert.True(t, errors.As(err, new(settingsError)), "a refused setting exits with EX_CONFIG")
}
