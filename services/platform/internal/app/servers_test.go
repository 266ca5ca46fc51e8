package app

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"platform/internal/config"
)

// The list of servers is the schema's x-server marks, which devenv's
// readiness and port checks read: the same port settings, the same names.
func TestServersAreTheSchemasXServerPorts(t *testing.T) {
	listed := map[string]string{}
	for _, s := range servers {
		_, dup := listed[s.port]
		assert.False(t, dup, "%s: a second server on %s", s.name, s.port)
		listed[s.port] = s.name
	}
	assert.Equal(t, config.ServerPorts(), listed,
		"servers (internal/app/servers.go) and the x-server marks of schemas/settings.schema.json differ")
}

// Each server binds the port its own setting names, on every listen
// address; a busy port's error names that setting.
func TestEachServerListensOnItsOwnPortSetting(t *testing.T) {
	hosts := []string{"127.0.0.1"}
	if ipv6Loopback() {
		hosts = append(hosts, "::1")
	}
	env := map[string]string{"APP_EXTRA_BIND_HOSTS": strings.Join(hosts[1:], ",")}
	for _, s := range servers {
		env[s.port] = strconv.Itoa(freePort(t))
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	require.NoError(t, err)
	lns, err := listen(cfg)
	require.NoError(t, err)
	got := map[string][]string{}
	for _, ln := range lns {
		got[servers[ln.srv].name] = append(got[servers[ln.srv].name], ln.Addr().String())
	}
	lns.close()
	for _, s := range servers {
		var want []string
		for _, h := range hosts {
			want = append(want, net.JoinHostPort(h, env[s.port]))
		}
		assert.Equal(t, want, got[s.name], "%s listens on %s", s.name, s.port)
	}

	last := servers[len(servers)-1]
	busy, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", env[last.port]))
	require.NoError(t, err)
	defer busy.Close()
	_, err = listen(cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), fmt.Sprintf("%s server cannot listen on 127.0.0.1:%s", last.name, env[last.port]))
	assert.Contains(t, err.Error(), "set "+last.port+" to a free port")
	for _, s := range servers[:len(servers)-1] {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", env[s.port]))
		require.NoError(t, err, "%s's port was given back when a later one was busy", s.name)
		ln.Close()
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func ipv6Loopback() bool {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err == nil {
		ln.Close()
	}
	return err == nil
}
