// Package failpoint lets a fault test kill the process at a named point of
// the code. PLATFORM_FAILPOINTS (read once at start) lists the enabled
// names, comma-separated; only tests set it. Hit on a disabled name is one
// map lookup on an empty map.
package failpoint

import (
	"fmt"
	"os"
	"strings"
	"syscall"
)

// EnvVar names the enabled failpoints.
const EnvVar = "PLATFORM_FAILPOINTS"

var enabled = parse(os.Getenv(EnvVar))

func parse(s string) map[string]bool {
	out := map[string]bool{}
	for _, name := range strings.Split(s, ",") {
		if name = strings.TrimSpace(name); name != "" {
			out[name] = true
		}
	}
	return out
}

// Hit kills the process with SIGKILL when name is enabled: no deferred
// function, no flush, no graceful shutdown runs, as after a kill -9. The
// line on stderr tells the test (and a puzzled reader of the log) why.
func Hit(name string) {
	if !enabled[name] {
		return
	}
	fmt.Fprintf(os.Stderr, "failpoint %s hit: killing the process (%s)\n", name, EnvVar)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is delivered before this goroutine runs again
}
