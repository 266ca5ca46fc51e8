// The relay loop's test doubles: an in-memory queue (the steps) and a scripted broker.

package relay

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var log = slog.New(slog.DiscardHandler)

// queue is a relay's source in memory: messages are ints, the position is
// how many of them were advanced past. It checks the loop's promise: Advance
// sees only what the broker acked, after the publish returned.
type queue struct {
	mu        sync.Mutex
	t         *testing.T
	msgs      []int
	pos       int
	acked     map[int]bool // what the broker acknowledged so far
	skipped   []int
	leads     int  // Lead calls that led
	standby   int  // Lead calls to answer "another leads" before leading
	leading   bool // between Lead and Resign
	lostAfter int  // Wait calls before one reports the session lost (0: never)
	waits     int
	readErr   error
	wake      chan struct{}
}

func newQueue(t *testing.T, n int) *queue {
	q := &queue{t: t, acked: map[int]bool{}, wake: make(chan struct{}, 1)}
	q.add(n)
	return q
}

// add queues n more messages and wakes the relay.
func (q *queue) add(n int) {
	q.mu.Lock()
	for range n {
		q.msgs = append(q.msgs, len(q.msgs))
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *queue) Lead(context.Context) (bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.standby > 0 {
		q.standby--
		return false, nil
	}
	q.leads++
	q.leading = true
	return true, nil
}

func (q *queue) Resign() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.leading = false
}

func (q *queue) Read(_ context.Context, limit int) ([]int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.leading {
		q.t.Error("Read while not leading")
	}
	if q.readErr != nil {
		return nil, q.readErr
	}
	return slices.Clone(q.msgs[q.pos:min(len(q.msgs), q.pos+limit)]), nil
}

func (q *queue) Advance(_ context.Context, acked []int) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, m := range acked {
		if m != q.pos+i {
			q.t.Errorf("Advance past %v from position %d: not the batch's leading part", acked, q.pos)
		}
		if !q.acked[m] {
			q.t.Errorf("Advance past message %d, which the broker has not acked", m)
		}
	}
	q.pos += len(acked)
	return nil
}

func (q *queue) Wait(ctx context.Context, poll time.Duration) error {
	q.mu.Lock()
	q.waits++
	lost := q.lostAfter > 0 && q.waits == q.lostAfter
	q.mu.Unlock()
	if lost {
		return errors.New("connection lost")
	}
	t := time.NewTimer(poll)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-q.wake:
	case <-t.C:
	}
	return nil
}

func (q *queue) position() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pos
}

// skippingQueue can set a refused message aside.
type skippingQueue struct{ *queue }

func (q skippingQueue) Skip(_ context.Context, m int, _ error) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.skipped = append(q.skipped, m)
	q.pos = m + 1
	return nil
}

// broker acks what it is given, except as its next answers say: each
// answer is how many of the next batch it acks and with what error.
type broker struct {
	mu      sync.Mutex
	q       *queue
	answers []answer
	calls   []time.Time
}

type answer struct {
	acked int
	err   error
}

func (b *broker) Publish(_ context.Context, msgs []int) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, time.Now())
	acked, err := len(msgs), error(nil)
	if len(b.answers) > 0 {
		acked, err = b.answers[0].acked, b.answers[0].err
		b.answers = b.answers[1:]
	}
	b.q.mu.Lock()
	for _, m := range msgs[:max(0, min(acked, len(msgs)))] {
		b.q.acked[m] = true
	}
	b.q.mu.Unlock()
	return acked, err
}

func (b *broker) callTimes() []time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.calls)
}

func newLoop[M any](t *testing.T, steps Steps[M], pub Publisher[M], timing Timing) *Loop[M] {
	t.Helper()
	l, err := New("test-relay", steps, pub, timing, log)
	require.NoError(t, err)
	return l
}

// start runs l until the test ends; the returned channel gives Run's error.
func start[M any](t *testing.T, l *Loop[M]) (stop context.CancelFunc, done <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- l.Run(ctx) }()
	t.Cleanup(cancel)
	return cancel, errc
}

func returned(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s")
		return nil
	}
}
