package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"platform/internal/config"
	"platform/internal/httpx"
)

// listener is one server's bound socket.
type listener struct {
	server string
	net.Listener
}

type listeners []listener

// listen binds the three servers' ports on each listen address; a busy one
// names its setting.
func listen(cfg config.Config) (listeners, error) {
	var lns listeners
	for _, s := range []struct {
		server string
		port   int
	}{{"ingestion", cfg.IngestionPort}, {"query", cfg.QueryPort}, {"actions", cfg.ActionsPort}} {
		for _, addr := range cfg.ListenAddrs(s.port) {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				lns.close()
				fix := "set " + strings.ToUpper(s.server) + "_PORT to a free port"
				if !errors.Is(err, syscall.EADDRINUSE) {
					fix = "set APP_BIND_HOST and APP_EXTRA_BIND_HOSTS to addresses of this host"
				}
				return nil, fmt.Errorf("%s server cannot listen on %s: %w (%s)", s.server, addr, err, fix)
			}
			lns = append(lns, listener{s.server, ln})
		}
	}
	return lns, nil
}

func (lns listeners) close() {
	for _, ln := range lns {
		_ = ln.Close() // already closed by Shutdown on the normal path
	}
}

// run serves until ctx ends or a server fails, then shuts down in order
// within timeout: 1. servers stop accepting and drain in-flight requests;
// 2. workers stop (relays flush while the command relay still has its MQTT
// session; consumers finish their batch, committed after its transaction);
// 3. MQTT intake stops and the producer flushes.
func run(ctx context.Context, timeout time.Duration, lns listeners, a *application, log *slog.Logger) error {
	for _, ln := range lns {
		if a.handlers[ln.server] == nil { // a nil handler would serve http.DefaultServeMux
			return fmt.Errorf("no handler for the %s server", ln.server)
		}
	}
	workCtx, stopWork := context.WithCancel(context.Background())
	defer stopWork()
	var work sync.WaitGroup
	for _, w := range a.workers {
		work.Add(1)
		go func() { defer work.Done(); w(workCtx) }()
	}

	servers := make([]*http.Server, len(lns))
	errc := make(chan error, len(lns))
	for i, ln := range lns {
		servers[i] = httpx.NewServer(ln.Addr().String(), a.handlers[ln.server], log)
		go func() {
			log.Info("server listening", "server", ln.server, "addr", ln.Addr().String())
			if err := servers[i].Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s server: %w", ln.server, err)
			}
		}()
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "timeout", timeout.String())
	case runErr = <-errc:
		log.Error("server failed, shutting down", "err", runErr)
	}

	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var drain sync.WaitGroup
	for i, s := range servers {
		drain.Add(1)
		go func() {
			defer drain.Done()
			if err := s.Shutdown(sctx); err != nil {
				log.Warn("server did not drain in time", "server", lns[i].server, "err", err)
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
