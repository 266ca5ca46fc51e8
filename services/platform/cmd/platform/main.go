// Command platform is the Go monolith: the ingestion, query and actions
// servers with their relays (events to Kafka, commands to MQTT) and
// consumers in one binary.
//
//	platform [serve]   run everything (default)
//	platform migrate   apply the database migrations and exit
//	platform after-restore   after `inv db.restore`: the relay and the
//	                   consumer groups follow the restored database
//	platform version   print the build info
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"platform/internal/app"
	"platform/internal/buildinfo"
	"platform/internal/config"
)

// Build stamps, set with
//
//	-ldflags "-X main.version=v1.2.3 -X main.commit=abc123 -X main.buildTime=2026-01-01T00:00:00Z"
//
// (what `inv build` and deploy/images/app.Dockerfile pass). They are handed
// to internal/buildinfo, which /healthz and the start log read.
var version, commit, buildTime string

var logLevel = new(slog.LevelVar)

// exitBadSettings is sysexits' EX_CONFIG: the supervisor of `inv run` stops
// at once instead of restarting a process whose settings cannot work.
const exitBadSettings = 78

// settingsError is a refused setting (as opposed to a failure while running).
type settingsError struct{ error }

func main() {
	buildinfo.Set(version, commit, buildTime)
	log := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: logLevel}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], log); err != nil {
		fmt.Fprintln(os.Stderr, "platform: "+strings.Join(strings.Fields(err.Error()), " "))
		stop()
		if errors.As(err, new(settingsError)) {
			os.Exit(exitBadSettings)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, log *slog.Logger) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd = args[0]
	}
	if len(args) > 1 {
		return fmt.Errorf("unexpected arguments %q; usage: platform [serve|migrate|after-restore|version]", args[1:])
	}
	switch cmd {
	case "version", "-version", "--version":
		b, _ := json.Marshal(buildinfo.Get())
		fmt.Println(string(b))
		return nil
	case "help", "-h", "--help":
		fmt.Println("usage: platform [serve|migrate|after-restore|version]; settings come from the environment (see .env.example)")
		return nil
	case "serve", "migrate", "after-restore":
	default:
		return fmt.Errorf("unknown command %q; usage: platform [serve|migrate|after-restore|version]", cmd)
	}
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return settingsError{err}
	}
	logLevel.Set(cfg.LogLevel)
	bi := buildinfo.Get()
	log.Info("starting", "command", cmd, "version", bi.Version, "commit", bi.Commit, "build_time", bi.BuildTime, "config", cfg)
	switch cmd {
	case "migrate":
		return app.Migrate(ctx, cfg, log)
	case "after-restore":
		return app.AfterRestore(ctx, cfg, log)
	}
	return app.Serve(ctx, cfg, log)
}
