package tracing

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"platform/internal/metrics"
)

// Counts are the spans a queue exported and dropped (queue full, or the
// viewer failed or timed out); the process's sum is /readyz's "tracing"
// (metrics.Spans).
type Counts = metrics.SpanCounts

// QueueConfig bounds the export queue. Zero values take the defaults.
type QueueConfig struct {
	Size     int           // spans held before new ones are dropped, default 8192
	Batch    int           // spans per export, default 512
	Interval time.Duration // longest wait before a partial batch is sent, default 1 s
}

// queue is the span processor every provider shares: OnEnd never blocks (a
// full queue drops the span and counts it), one goroutine exports batches.
// It does the job of the SDK's BatchSpanProcessor, whose drop count cannot
// be read; this one's is shown on /readyz.
type queue struct {
	spans    chan sdktrace.ReadOnlySpan
	exp      sdktrace.SpanExporter
	batch    int
	interval time.Duration
	flush    chan chan struct{}
	done     chan struct{} // closed by Shutdown: export what is queued, then return
	finished chan struct{} // closed by run as it returns
	stopOnce sync.Once
	stopped  atomic.Bool

	exported, dropped atomic.Int64
}

func newQueue(exp sdktrace.SpanExporter, c QueueConfig) *queue {
	if c.Size <= 0 {
		c.Size = 8192
	}
	if c.Batch <= 0 {
		c.Batch = 512
	}
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	q := &queue{spans: make(chan sdktrace.ReadOnlySpan, c.Size), exp: exp, batch: c.Batch, interval: c.Interval,
		flush: make(chan chan struct{}), done: make(chan struct{}), finished: make(chan struct{})}
	go q.run()
	return q
}

func (q *queue) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd enqueues a sampled span, or drops and counts it when the queue is
// full: the caller (a request, a relay) never waits for the viewer.
func (q *queue) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		return
	}
	if q.stopped.Load() {
		q.drop(1)
		return
	}
	select {
	case q.spans <- s:
	default:
		q.drop(1)
	}
}

func (q *queue) drop(n int) {
	q.dropped.Add(int64(n))
	metrics.SpansDropped.Add(int64(n))
}

func (q *queue) counts() Counts {
	return Counts{Exported: q.exported.Load(), Dropped: q.dropped.Load()}
}

// run collects batches and exports them until Shutdown.
func (q *queue) run() {
	defer close(q.finished)
	tick := time.NewTicker(q.interval)
	defer tick.Stop()
	buf := make([]sdktrace.ReadOnlySpan, 0, q.batch)
	for {
		select {
		case s := <-q.spans:
			if buf = append(buf, s); len(buf) >= q.batch {
				buf = q.export(context.Background(), buf)
			}
		case <-tick.C:
			buf = q.export(context.Background(), buf)
		case ack := <-q.flush:
			buf = q.export(context.Background(), q.drain(buf))
			close(ack)
		case <-q.done:
			buf = q.export(context.Background(), q.drain(buf))
			return
		}
	}
}

// drain takes what the channel holds now.
func (q *queue) drain(buf []sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
	for {
		select {
		case s := <-q.spans:
			buf = append(buf, s)
		default:
			return buf
		}
	}
}

// export sends buf in batches and returns it emptied; spans the viewer did
// not take are counted dropped.
func (q *queue) export(ctx context.Context, buf []sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
	for start := 0; start < len(buf); start += q.batch {
		part := buf[start:min(len(buf), start+q.batch)]
		ectx, cancel := context.WithTimeout(ctx, exportTimeout)
		err := q.exp.ExportSpans(ectx, part)
		cancel()
		if err != nil {
			q.drop(len(part))
		} else {
			q.exported.Add(int64(len(part)))
			metrics.SpansExported.Add(int64(len(part)))
		}
	}
	clear(buf)
	return buf[:0]
}

// ForceFlush exports what is queued now, within ctx.
func (q *queue) ForceFlush(ctx context.Context) error {
	if q.stopped.Load() {
		return nil
	}
	ack := make(chan struct{})
	select {
	case q.flush <- ack:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ack:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown stops taking spans, waits (within ctx) for the export goroutine to
// send what is queued and return, then shuts the exporter down. Past ctx it
// returns ctx's error; the goroutine still returns, each export being bounded
// by exportTimeout. A provider's Shutdown calls it too: only the first call acts.
func (q *queue) Shutdown(ctx context.Context) error {
	var err error
	q.stopOnce.Do(func() {
		q.stopped.Store(true)
		close(q.done)
		select {
		case <-q.finished:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if stopErr := q.exp.Shutdown(ctx); err == nil {
			err = stopErr
		}
	})
	return err
}
