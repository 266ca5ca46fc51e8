package detector

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"platform/internal/inference"
)

type key struct{ device, metric string }

type point struct {
	ts    time.Time
	value float64
}

// window returns the reference window of k: from memory, or rebuilt from
// the readings projection (readings strictly before first). Values the
// scorer cannot take were judged "not scored" when they arrived; they are
// no reference either.
func (d *Detector) window(ctx context.Context, k key, first time.Time) ([]point, error) {
	if w, ok := d.windows[k]; ok {
		return w, nil
	}
	dom := inference.ValueDomain
	rows, err := d.pool.Query(ctx, `
		SELECT ts, value FROM readings
		WHERE device_id = $1 AND metric = $2 AND ts < $3 AND value BETWEEN $5 AND $6
		ORDER BY ts DESC LIMIT $4`, k.device, k.metric, first, d.cfg.Window, dom.Min, dom.Max)
	if err != nil {
		return nil, fmt.Errorf("rebuild window %s/%s: %w", k.device, k.metric, err)
	}
	w, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (point, error) {
		var p point
		err := r.Scan(&p.ts, &p.value)
		p.ts = p.ts.UTC()
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("rebuild window %s/%s: %w", k.device, k.metric, err)
	}
	for i, j := 0, len(w)-1; i < j; i, j = i+1, j-1 {
		w[i], w[j] = w[j], w[i]
	}
	return w, nil
}

// keep stores the next windows and evicts beyond MaxKeys; an evicted one
// is rebuilt from the readings projection when its key comes back.
func (d *Detector) keep(next map[key][]point) {
	for k, w := range next {
		d.windows[k] = w
	}
	for k := range d.windows {
		if len(d.windows) <= d.cfg.MaxKeys {
			return
		}
		delete(d.windows, k)
	}
}
