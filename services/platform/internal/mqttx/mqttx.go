// Package mqttx wraps the Eclipse Paho MQTT 3.1.1 client: a persistent
// session (a stable client id per instance, clean session off), QoS 1 subscriptions whose
// messages are acknowledged (manual PUBACK) only after their handler
// returned, i.e. after the transaction that stored them, and QoS 1
// publishes that wait for PUBACK. Paho's router only hands each message to
// a bounded queue per subscription, drained in batches by one worker.
package mqttx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"platform/internal/pause"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Message is one inbound publish.
type Message struct {
	Topic   string
	Payload []byte
}

// BatchHandler processes messages in arrival order. Bad input is the
// handler's to deal with (e.g. a dead-letter queue); an error means "could
// not process now": the batch is retried with backoff and acknowledged to
// the broker only after a nil return.
type BatchHandler func(ctx context.Context, msgs []Message) error

// Subscription routes a topic filter to a handler.
type Subscription struct {
	Filter   string // e.g. devices/+/telemetry
	MaxBatch int    // messages handed over at most at once (default 1)
	Handler  BatchHandler
}

// Options of a Client.
type Options struct {
	Broker     string // tcp://host:port
	ClientID   string
	ShareGroup string // subscribe as $share/<group>/<filter> when set
	// QueueSize bounds each subscription's queue, default 1000. Keep it at
	// least the broker's in-flight limit (compose.yaml EMQX_MQTT__MAX_INFLIGHT):
	// the broker never has more unacked messages out, so the router never
	// blocks.
	QueueSize int
	// HandlerTimeout bounds one handler call (none when 0): a handler stuck
	// on a stalled database gives up, its batch stays unacknowledged and is
	// retried with backoff, so intake resumes when the database does.
	HandlerTimeout time.Duration
	Log            *slog.Logger
}

type inbound struct {
	msg mqtt.Message
}

// Client is a connected (or connecting) MQTT client.
type Client struct {
	c      mqtt.Client
	opts   Options
	subs   []Subscription
	queues []chan inbound
	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool
}

// Connect starts the client; it keeps retrying in the background until the
// broker answers, and resubscribes after every reconnect.
func Connect(opts Options, subs []Subscription) *Client {
	ctx, cancel := context.WithCancel(context.Background())
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1000
	}
	cl := &Client{opts: opts, subs: subs, ctx: ctx, cancel: cancel}
	for range subs {
		cl.queues = append(cl.queues, make(chan inbound, opts.QueueSize))
	}
	o := mqtt.NewClientOptions().
		AddBroker(opts.Broker).
		SetClientID(opts.ClientID).
		SetCleanSession(false).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(10 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetOrderMatters(true).
		SetAutoAckDisabled(true).
		SetDefaultPublishHandler(cl.route).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			opts.Log.Warn("mqtt connection lost", "err", err)
		}).
		SetOnConnectHandler(func(c mqtt.Client) {
			opts.Log.Info("mqtt connected", "broker", opts.Broker, "client_id", opts.ClientID)
			for _, s := range subs {
				f := s.Filter
				if opts.ShareGroup != "" {
					f = "$share/" + opts.ShareGroup + "/" + f
				}
				t := c.Subscribe(f, 1, nil)
				go func() {
					if t.WaitTimeout(10*time.Second) && t.Error() == nil {
						opts.Log.Info("mqtt subscribed", "filter", f)
					} else {
						opts.Log.Error("mqtt subscribe failed", "filter", f, "err", t.Error())
					}
				}()
			}
		})
	cl.c = mqtt.NewClient(o)
	for i, s := range subs {
		cl.wg.Add(1)
		go cl.worker(s, cl.queues[i])
	}
	cl.c.Connect() // retries in the background (ConnectRetry)
	return cl
}

// route is paho's publish handler (called in order on paho's goroutine):
// it queues the message for its subscription's worker and returns. Only a
// broker that sends more unacked messages than QueueSize fills a queue;
// then it blocks (backpressure; nothing is dropped) and says so.
func (cl *Client) route(_ mqtt.Client, m mqtt.Message) {
	for i, s := range cl.subs {
		if Match(s.Filter, m.Topic()) {
			select {
			case cl.queues[i] <- inbound{msg: m}:
				return
			default:
			}
			cl.opts.Log.Warn("mqtt queue full: the broker's in-flight limit exceeds QueueSize; paho's router waits", "filter", s.Filter, "queue", cap(cl.queues[i]))
			select {
			case cl.queues[i] <- inbound{msg: m}:
			case <-cl.ctx.Done():
			}
			return
		}
	}
	cl.opts.Log.Warn("mqtt message on unexpected topic", "topic", m.Topic())
	m.Ack()
}

func (cl *Client) worker(s Subscription, q chan inbound) {
	defer cl.wg.Done()
	max := s.MaxBatch
	if max <= 0 {
		max = 1
	}
	for {
		var batch []mqtt.Message
		select {
		case in := <-q:
			batch = append(batch, in.msg)
		case <-cl.ctx.Done():
			return
		}
	fill:
		for len(batch) < max {
			select {
			case in := <-q:
				batch = append(batch, in.msg)
			default:
				break fill
			}
		}
		msgs := make([]Message, len(batch))
		for i, m := range batch {
			msgs[i] = Message{Topic: m.Topic(), Payload: m.Payload()}
		}
		backoff := 100 * time.Millisecond
		for {
			err := cl.handle(s, msgs)
			if err == nil {
				break
			}
			if cl.ctx.Err() != nil {
				return // unacked: the broker redelivers to the persistent session
			}
			cl.opts.Log.Warn("mqtt handler failed, retrying", "filter", s.Filter, "err", err, "backoff", backoff)
			if !pause.For(cl.ctx, backoff) {
				return
			}
			backoff = pause.Backoff{Min: 100 * time.Millisecond, Max: 10 * time.Second}.Next(backoff)
		}
		for _, m := range batch {
			m.Ack() // PUBACK only after the handler stored (or dead-lettered) it
		}
	}
}

// handle runs the subscription's handler within HandlerTimeout.
func (cl *Client) handle(s Subscription, msgs []Message) error {
	ctx, cancel := cl.ctx, context.CancelFunc(func() {})
	if cl.opts.HandlerTimeout > 0 {
		ctx, cancel = context.WithTimeout(cl.ctx, cl.opts.HandlerTimeout)
	}
	defer cancel()
	return s.Handler(ctx, msgs)
}

// Publish sends payload with QoS 1 and waits for the broker's PUBACK.
func (cl *Client) Publish(ctx context.Context, topic string, payload []byte) error {
	if !cl.c.IsConnectionOpen() {
		return errors.New("mqtt: not connected to " + cl.opts.Broker)
	}
	t := cl.c.Publish(topic, 1, false, payload)
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return fmt.Errorf("mqtt publish %s: %w", topic, ctx.Err())
	}
}

// Ping reports whether the connection is up.
func (cl *Client) Ping(context.Context) error {
	if !cl.c.IsConnectionOpen() {
		return errors.New("not connected to " + cl.opts.Broker)
	}
	return nil
}

// Close stops delivering messages, waits for the handlers in progress,
// and disconnects (the session and its unacked messages stay on the broker).
func (cl *Client) Close(timeout time.Duration) {
	cl.mu.Lock()
	if cl.closed {
		cl.mu.Unlock()
		return
	}
	cl.closed = true
	cl.mu.Unlock()
	cl.cancel()
	done := make(chan struct{})
	go func() { cl.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		cl.opts.Log.Warn("mqtt handlers still running at shutdown")
	}
	cl.c.Disconnect(uint(min(timeout, 2*time.Second) / time.Millisecond))
}

// Match reports whether topic matches the MQTT filter (+ and # wildcards).
func Match(filter, topic string) bool {
	f := strings.Split(filter, "/")
	t := strings.Split(topic, "/")
	for i, part := range f {
		if part == "#" {
			return true
		}
		if i >= len(t) {
			return false
		}
		if part != "+" && part != t[i] {
			return false
		}
	}
	return len(f) == len(t)
}

// TopicLevel returns level i of topic ("" if absent).
func TopicLevel(topic string, i int) string {
	parts := strings.Split(topic, "/")
	if i < len(parts) {
		return parts[i]
	}
	return ""
}
