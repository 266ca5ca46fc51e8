package relay

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAdvancesOnlyPastWhatTheBrokerAcked(t *testing.T) {
	q := newQueue(t, 10)
	b := &broker{q: q, answers: []answer{{4, errors.New("broker unavailable")}}}
	l := newLoop[int](t, q, b, Timing{BatchSize: 100})

	n, err := l.Drain(context.Background())
	require.ErrorContains(t, err, "broker unavailable")
	assert.Equal(t, 4, n)
	assert.Equal(t, 4, q.position(), "past the acked four only")
	n, err = l.Drain(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 6, n)
	assert.Equal(t, 10, q.position())
}

func TestNothingAckedNothingAdvanced(t *testing.T) {
	q := newQueue(t, 3)
	b := &broker{q: q, answers: []answer{{0, errors.New("timeout")}}}
	n, err := newLoop[int](t, q, b, Timing{}).Drain(context.Background())
	require.Error(t, err)
	assert.Zero(t, n)
	assert.Zero(t, q.position())
}

func TestDrainPublishesBatchesUntilAShortOne(t *testing.T) {
	q := newQueue(t, 25)
	b := &broker{q: q}
	n, err := newLoop[int](t, q, b, Timing{BatchSize: 10}).Drain(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 25, n)
	assert.Len(t, b.callTimes(), 3, "10 + 10 + 5")
}

func TestDrainWhileAnotherLeadsPublishesNothing(t *testing.T) {
	q := newQueue(t, 3)
	q.standby = 1
	b := &broker{q: q}
	_, err := newLoop[int](t, q, b, Timing{}).Drain(context.Background())
	require.ErrorIs(t, err, ErrNotLeader)
	assert.Empty(t, b.callTimes())
}

// A wake-up publishes at once, not at the next poll.
func TestWakeUpPublishesWithoutWaitingForThePoll(t *testing.T) {
	q := newQueue(t, 1)
	l := newLoop[int](t, q, &broker{q: q}, Timing{PollInterval: time.Hour})
	stop, done := start(t, l)
	require.Eventually(t, func() bool { return q.position() == 1 }, 10*time.Second, time.Millisecond)
	q.add(2)
	require.Eventually(t, func() bool { return q.position() == 3 }, 10*time.Second, time.Millisecond,
		"woken, not left until the hour's poll")
	stop()
	require.NoError(t, returned(t, done))
}

// Without a wake-up, the poll finds what was queued.
func TestThePollFindsWhatNoWakeUpAnnounced(t *testing.T) {
	q := newQueue(t, 0)
	l := newLoop[int](t, q, &broker{q: q}, Timing{PollInterval: 10 * time.Millisecond})
	stop, done := start(t, l)
	q.mu.Lock()
	q.msgs = append(q.msgs, 0, 1) // no wake
	q.mu.Unlock()
	require.Eventually(t, func() bool { return q.position() == 2 }, 10*time.Second, time.Millisecond)
	stop()
	require.NoError(t, returned(t, done))
}

// After each failure the relay resigns, pauses at least twice as long as
// the last time (from MinBackoff, up to MaxBackoff), and tries again; the
// first success resets the pause.
func TestBacksOffAfterAFailureAndResigns(t *testing.T) {
	q := newQueue(t, 5)
	fail := answer{0, errors.New("broker unavailable")}
	b := &broker{q: q, answers: []answer{fail, fail, fail, fail}}
	lo, hi := 20*time.Millisecond, 50*time.Millisecond
	l := newLoop[int](t, q, b, Timing{MinBackoff: lo, MaxBackoff: hi, PollInterval: time.Hour})
	stop, done := start(t, l)
	require.Eventually(t, func() bool { return q.position() == 5 }, 10*time.Second, time.Millisecond)
	calls := b.callTimes()
	require.Len(t, calls, 5, "four failures, then the success")
	for i, least := range []time.Duration{lo, 2 * lo, hi, hi} {
		assert.GreaterOrEqual(t, calls[i+1].Sub(calls[i]), least, "pause after failure %d", i+1)
	}
	q.mu.Lock()
	assert.Equal(t, 5, q.leads, "led again after each failure")
	q.mu.Unlock()
	stop()
	require.NoError(t, returned(t, done))
}

// A lost leadership session (Wait's error) makes the relay lead again.
func TestLostSessionLeadsAgain(t *testing.T) {
	q := newQueue(t, 1)
	q.lostAfter = 1
	l := newLoop[int](t, q, &broker{q: q}, Timing{PollInterval: 5 * time.Millisecond})
	stop, done := start(t, l)
	require.Eventually(t, func() bool { q.mu.Lock(); defer q.mu.Unlock(); return q.leads == 2 }, 10*time.Second, time.Millisecond)
	q.add(1)
	require.Eventually(t, func() bool { return q.position() == 2 }, 10*time.Second, time.Millisecond)
	stop()
	require.NoError(t, returned(t, done))
}

// A standby publishes nothing until it leads.
func TestStandbyPublishesOnlyOnceItLeads(t *testing.T) {
	q := newQueue(t, 2)
	q.standby = 3
	b := &broker{q: q}
	l := newLoop[int](t, q, b, Timing{PollInterval: 5 * time.Millisecond})
	stop, done := start(t, l)
	require.Eventually(t, func() bool { return q.position() == 2 }, 10*time.Second, time.Millisecond)
	q.mu.Lock()
	assert.Zero(t, q.standby, "asked three times before it led")
	q.mu.Unlock()
	stop()
	require.NoError(t, returned(t, done))
}

// On stop the relay drains once more: what was queued without a wake-up
// is published before Run returns.
func TestStopFlushesWhatIsQueued(t *testing.T) {
	q := newQueue(t, 1)
	l := newLoop[int](t, q, &broker{q: q}, Timing{PollInterval: time.Hour})
	stop, done := start(t, l)
	require.Eventually(t, func() bool { return q.position() == 1 }, 10*time.Second, time.Millisecond)
	q.mu.Lock()
	q.msgs = append(q.msgs, 1, 2) // no wake: only the flush publishes these
	q.mu.Unlock()
	stop()
	require.NoError(t, returned(t, done))
	assert.Equal(t, 3, q.position())
	q.mu.Lock()
	assert.False(t, q.leading, "resigned on return")
	q.mu.Unlock()
}

// Failures no retry cures end Run with the error.
func TestPermanentFailureIsReturned(t *testing.T) {
	for name, c := range map[string]struct {
		answer  answer
		readErr error
		want    string
	}{
		"publisher acks more than it was given": {answer: answer{3, nil}, want: "publisher acked 3 of 2 messages"},
		"publisher acks fewer than none":        {answer: answer{-1, nil}, want: "publisher acked -1 of 2 messages"},
		"refused, and no way to set it aside":   {answer: answer{0, fmt.Errorf("%w: MESSAGE_TOO_LARGE", ErrRefused)}, want: "cannot set a message aside"},
		"a step's permanent error":              {readErr: Permanent(errors.New(`relation "relay_cursors" does not exist`)), want: "relay_cursors"},
	} {
		t.Run(name, func(t *testing.T) {
			q := newQueue(t, 2)
			q.readErr = c.readErr
			b := &broker{q: q, answers: []answer{c.answer}}
			_, done := start(t, newLoop[int](t, q, b, Timing{MinBackoff: time.Millisecond}))
			err := returned(t, done)
			require.Error(t, err)
			assert.True(t, IsPermanent(err))
			assert.Contains(t, err.Error(), c.want)
			assert.Zero(t, q.position(), "nothing advanced")
		})
	}
}

// A transient failure never ends Run: it retries until the broker is back.
func TestTransientFailuresAreRetriedNotReturned(t *testing.T) {
	q := newQueue(t, 1)
	q.readErr = errors.New("connection refused")
	l := newLoop[int](t, q, &broker{q: q}, Timing{MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	stop, done := start(t, l)
	require.Eventually(t, func() bool { q.mu.Lock(); defer q.mu.Unlock(); return q.leads >= 5 }, 10*time.Second, time.Millisecond)
	q.mu.Lock()
	q.readErr = nil
	q.mu.Unlock()
	require.Eventually(t, func() bool { return q.position() == 1 }, 10*time.Second, time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Run returned %v on a transient failure", err)
	default:
	}
	stop()
	require.NoError(t, returned(t, done))
}

// A message the broker refused for good is set aside by a Skipper, and the
// messages behind it are published.
func TestRefusedMessageIsSetAsideAndTheRestPublished(t *testing.T) {
	q := newQueue(t, 4)
	b := &broker{q: q, answers: []answer{{1, fmt.Errorf("%w: MESSAGE_TOO_LARGE", ErrRefused)}}}
	l := newLoop[int](t, skippingQueue{q}, b, Timing{})
	n, err := l.Drain(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 2, n, "the acked one and the refused one")
	n, err = l.Drain(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assert.Equal(t, []int{1}, q.skipped)
	assert.Equal(t, 4, q.position())
}

func TestTimingDefaultsAndValidate(t *testing.T) {
	var c Timing
	c.SetDefaults()
	require.NoError(t, c.Validate())
	assert.Equal(t, Timing{BatchSize: 1000, PollInterval: 500 * time.Millisecond, PublishTimeout: 30 * time.Second,
		MinBackoff: 100 * time.Millisecond, MaxBackoff: 10 * time.Second, FlushTimeout: 5 * time.Second}, c)
	_, err := New[int]("r", newQueue(t, 0), &broker{}, Timing{MinBackoff: time.Minute, MaxBackoff: time.Second}, log)
	assert.ErrorContains(t, err, "MinBackoff > MaxBackoff")
}
