package failpoint

import (
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	assert.Equal(t, map[string]bool{"a": true, "b-c": true}, parse(" a, b-c ,,"))
	assert.Empty(t, parse(""))
}

// The child process (this test binary, re-run) hits an enabled failpoint
// and must die by SIGKILL; a disabled one returns.
func TestHitKillsOnlyWhenEnabled(t *testing.T) {
	if name := os.Getenv("FAILPOINT_CHILD"); name != "" {
		Hit("not-enabled")
		Hit(name)
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=TestHitKillsOnlyWhenEnabled")
	cmd.Env = append(os.Environ(), "FAILPOINT_CHILD=p1", EnvVar+"=p1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, string(out))
	status := exit.Sys().(syscall.WaitStatus)
	assert.True(t, status.Signaled() && status.Signal() == syscall.SIGKILL, "status %v", status)
	assert.Contains(t, string(out), "failpoint p1 hit")

	cmd = exec.Command(os.Args[0], "-test.run=TestHitKillsOnlyWhenEnabled")
	cmd.Env = append(os.Environ(), "FAILPOINT_CHILD=p2", EnvVar+"=p1")
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, string(out))
}
