//go:build component

package query_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ingclient "platform/ingestion/client"
	"platform/internal/contracts"
	"platform/query/client"
)

// walk reads pages from the first to the one without a next cursor and
// returns their items in order and how many pages there were.
func walk[T any](t *testing.T, page func(cursor string) ([]T, *string, error)) (all []T, pages int) {
	t.Helper()
	cursor := ""
	for {
		items, next, err := page(cursor)
		require.NoError(t, err)
		pages++
		all = append(all, items...)
		if next == nil {
			return all, pages
		}
		cursor = *next
	}
}

func TestPagination(t *testing.T) {
	reset(t)
	ctx := context.Background()
	var rs []ingclient.Reading
	for i := 0; i < 5; i++ {
		rs = append(rs, rd(fmt.Sprintf("dev-%d", i), i, map[string]float64{"x": 1}))
	}
	for i := 0; i < 25; i++ {
		rs = append(rs, rd("dev-p", i, map[string]float64{"temp": float64(i)}))
	}
	apply(t, ingest(t, rs...))

	ids, pages := walk(t, func(cursor string) ([]string, *string, error) {
		p, err := cli.Devices(ctx, client.Page{Limit: 2, Cursor: cursor})
		var ids []string
		for _, d := range p.Devices {
			ids = append(ids, d.DeviceID)
		}
		return ids, p.NextCursor, err
	})
	assert.Equal(t, 3, pages)
	assert.Equal(t, []string{"dev-0", "dev-1", "dev-2", "dev-3", "dev-4", "dev-p"}, ids)

	vals, pages := walk(t, func(cursor string) ([]float64, *string, error) {
		p, err := cli.Readings(ctx, "dev-p", client.ReadingsQuery{Page: client.Page{Limit: 10, Cursor: cursor}})
		var vals []float64
		for _, r := range p.Readings {
			vals = append(vals, r.Value)
		}
		return vals, p.NextCursor, err
	})
	assert.Equal(t, 3, pages)
	require.Len(t, vals, 25)
	assert.True(t, sort.Float64sAreSorted(vals), "time order across pages")

	versions, _ := walk(t, func(cursor string) ([]int64, *string, error) {
		p, err := cli.Events(ctx, "dev-p", client.Page{Limit: 7, Cursor: cursor})
		var versions []int64
		for _, e := range p.Events {
			versions = append(versions, e.Version)
		}
		return versions, p.NextCursor, err
	})
	require.Len(t, versions, 25)
	for i, v := range versions {
		assert.Equal(t, int64(i+1), v)
	}
}

func TestUnknownDeviceIs404(t *testing.T) {
	reset(t)
	ctx := context.Background()
	_, err := cli.Latest(ctx, "ghost")
	apiErr(t, err, 404, "not_found")
	_, err = cli.Readings(ctx, "ghost", client.ReadingsQuery{})
	apiErr(t, err, 404, "not_found")
	_, err = cli.Events(ctx, "ghost", client.Page{})
	apiErr(t, err, 404, "not_found")
}

func TestBadParametersAreNamed(t *testing.T) {
	reset(t)
	ctx := context.Background()
	apply(t, ingest(t, rd("dev-a", 1, map[string]float64{"temp": 1})))
	fields := func(ae *client.Error) []string {
		var out []string
		for _, d := range ae.Details {
			out = append(out, d.Field)
		}
		sort.Strings(out)
		return out
	}
	_, err := cli.ReadingsRaw(ctx, "dev-a", url.Values{"limit": {"0"}, "from": {"yesterday"}, "cursor": {"%%%"}, "color": {"red"}})
	ae := apiErr(t, err, 400, "invalid_parameter")
	assert.Equal(t, []string{"color", "cursor", "from", "limit"}, fields(ae))

	_, err = cli.ReadingsRaw(ctx, "dev-a", url.Values{"from": {"2026-01-02T00:00:00Z"}, "to": {"2026-01-01T00:00:00Z"}})
	ae = apiErr(t, err, 400, "invalid_parameter")
	assert.Equal(t, []string{"from", "to"}, fields(ae))

	_, err = cli.ReadingsRaw(ctx, "dev-a", url.Values{"metric": {"a b"}})
	apiErr(t, err, 400, "invalid_parameter")

	_, err = cli.Devices(ctx, client.Page{Limit: 5000})
	ae = apiErr(t, err, 400, "invalid_parameter")
	assert.Equal(t, []string{"limit"}, fields(ae))

	_, err = cli.Latest(ctx, "bad+id")
	apiErr(t, err, 400, "invalid_parameter")
}

func TestAnomaliesList(t *testing.T) {
	reset(t)
	require.NoError(t, db.Truncate(context.Background(), "anomalies"))
	ctx := context.Background()
	ingest(t, rd("dev-a", 1, map[string]float64{"temp": 1}))
	for i := range 5 {
		metric := "temperature"
		if i == 2 {
			metric = "humidity"
		}
		_, err := db.Pool.Exec(ctx, `
			INSERT INTO anomalies (event_id, device_id, metric, ts, value, score, reading_event_id, model_name, model_version, detected_at)
			VALUES ($1, 'dev-a', $2, $3, $4, 9.5, $5, 'robust-zscore', '1.0.0', now())`,
			uuid.New(), metric, t0.Add(time.Duration(10-i)*time.Second), float64(90+i), uuid.New())
		require.NoError(t, err)
	}
	page, err := cli.Anomalies(ctx, "dev-a", client.AnomaliesQuery{Page: client.Page{Limit: 2}})
	require.NoError(t, err)
	require.Len(t, page.Anomalies, 2)
	require.NotNil(t, page.NextCursor)
	assert.Equal(t, 94.0, page.Anomalies[0].Value, "ordered by ts")
	assert.Equal(t, "robust-zscore", page.Anomalies[0].Model.Name)
	var all []client.Anomaly
	all = append(all, page.Anomalies...)
	for page.NextCursor != nil {
		page, err = cli.Anomalies(ctx, "dev-a", client.AnomaliesQuery{Page: client.Page{Limit: 2, Cursor: *page.NextCursor}})
		require.NoError(t, err)
		all = append(all, page.Anomalies...)
	}
	require.Len(t, all, 5)
	for i := 1; i < len(all); i++ {
		assert.True(t, all[i].TS.After(all[i-1].TS))
	}
	hum, err := cli.Anomalies(ctx, "dev-a", client.AnomaliesQuery{Metric: "humidity"})
	require.NoError(t, err)
	require.Len(t, hum.Anomalies, 1)
	assert.Equal(t, 92.0, hum.Anomalies[0].Value)

	assertBodiesMatch(t, map[string]string{
		"/query/v1/devices/dev-a/anomalies":                contracts.AnomalyList,
		"/query/v1/devices/dev-a/anomalies?limit=1":        contracts.AnomalyList,
		"/query/v1/devices/ghost/anomalies":                contracts.ErrorBody,
		"/query/v1/devices/dev-a/anomalies?metric=a%20b":   contracts.ErrorBody,
		"/query/v1/devices/dev-a/anomalies?cursor=zz":      contracts.ErrorBody,
		"/query/v1/devices/dev-a/anomalies?from=2026-01-1": contracts.ErrorBody,
	})
	_, err = cli.Anomalies(ctx, "ghost", client.AnomaliesQuery{})
	apiErr(t, err, http.StatusNotFound, "not_found")
	_, err = cli.Anomalies(ctx, "dev-a", client.AnomaliesQuery{Metric: "a b"})
	ae := apiErr(t, err, http.StatusBadRequest, "invalid_parameter")
	assert.Equal(t, "metric", ae.Details[0].Field)
}
