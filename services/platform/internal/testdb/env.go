package testdb

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"platform/internal/config"
)

// Reachable dials a TCP address within 3 s and returns the one-line
// failure that integration tests print: what was tried and how to start it.
func Reachable(what, addr, component string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("%s unreachable at %s: %v; start it with `inv up %s` or run `nox -s integration`", what, addr, err, component)
	}
	return c.Close()
}

// Config is the settings the tests connect with (POSTGRES_*, KAFKA_*, MQTT_*).
func Config() (config.Config, error) { return config.Load(os.Getenv) }
