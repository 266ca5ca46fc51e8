package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"platform/internal/config"
	"platform/internal/httpx"
)

// listener is one bound socket of servers[srv].
type listener struct {
	srv int
	net.Listener
}

type listeners []listener

// listen binds each server's port on each listen address; a busy one names
// its setting.
func listen(cfg config.Config) (listeners, error) {
	var lns listeners
	for i, s := range servers {
		port, ok := cfg.Port(s.port)
		if !ok {
			return nil, fmt.Errorf("%s server: config.Config has no port setting %s", s.name, s.port)
		}
		for _, addr := range cfg.ListenAddrs(port) {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				lns.close()
				fix := "set " + s.port + " to a free port"
				if !errors.Is(err, syscall.EADDRINUSE) {
					fix = "set APP_BIND_HOST and APP_EXTRA_BIND_HOSTS to addresses of this host"
				}
				return nil, fmt.Errorf("%s server cannot listen on %s: %w (%s)", s.name, addr, err, fix)
			}
			lns = append(lns, listener{i, ln})
		}
	}
	return lns, nil
}

func (lns listeners) close() {
	for _, ln := range lns {
		_ = ln.Close() // already closed by Shutdown on the normal path
	}
}

// run serves until ctx ends or a server or worker fails, then shuts down
// in order within timeout: 1. servers stop accepting and drain in-flight
// requests; 2. workers stop (relays flush while the command relay still has
// its MQTT session; consumers finish their batch, committed after its
// transaction); 3. MQTT intake stops and the producer flushes. A failure is
// returned: the process exits non-zero, and its supervisor restarts it.
func run(ctx context.Context, timeout time.Duration, lns listeners, a *application, log *slog.Logger) error {
	errc := make(chan error, len(lns)+len(a.workers))
	workCtx, stopWork := context.WithCancel(context.Background())
	defer stopWork()
	var work sync.WaitGroup
	for _, w := range a.workers {
		work.Add(1)
		go func() {
			defer work.Done()
			if err := w.run(workCtx); err != nil {
				errc <- fmt.Errorf("%s: %w", w.name, err)
			}
		}()
	}

	handlers := make([]http.Handler, len(servers)) // one per server, whatever its addresses
	httpServers := make([]*http.Server, len(lns))
	for i, ln := range lns {
		if handlers[ln.srv] == nil {
			handlers[ln.srv] = servers[ln.srv].handler(a)
		}
		name := servers[ln.srv].name
		httpServers[i] = httpx.NewServer(ln.Addr().String(), handlers[ln.srv], log)
		go func() {
			log.Info("server listening", "server", name, "addr", ln.Addr().String())
			if err := httpServers[i].Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s server: %w", name, err)
			}
		}()
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "timeout", timeout.String())
	case runErr = <-errc:
		log.Error("failed, shutting down", "err", runErr)
	}

	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var drain sync.WaitGroup
	for i, s := range httpServers {
		drain.Add(1)
		go func() {
			defer drain.Done()
			if err := s.Shutdown(sctx); err != nil {
				log.Warn("server did not drain in time", "server", servers[lns[i].srv].name, "err", err)
			}
		}()
	}
	drain.Wait()
	stopWork()
	if !waitUntil(sctx, &work) {
		log.Warn("workers did not stop within the shutdown timeout")
	}
	a.stopIntake()
	a.infra.flush()
	log.Info("stopped")
	return runErr
}

// waitUntil waits for wg, or for ctx to end first (false).
func waitUntil(ctx context.Context, wg *sync.WaitGroup) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}
