// Package layertest helps tests give ZeroMQ receivers loopback ports.
package layertest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// lowest is the bottom of the range ports are drawn from.
const lowest = 10000

// handedOut holds the ports FreePort returned in this test process. A port
// is free when drawn but bound only later, so two parallel tests drawing
// the same one would collide; a port is never handed out twice instead.
// It is process-wide because the tests sharing the port space are.
var handedOut sync.Map

// FreePort returns a loopback TCP port that is free now and that no other
// test of this process was given. Tests bind it later, so it is drawn at
// random below the kernel's ephemeral range: asking the kernel for port 0
// would hand out ports the many outgoing ZeroMQ connections of a test run
// also take as source ports, and a receiver binding such a port later
// finds it in use.
func FreePort(t testing.TB) int {
	t.Helper()
	highest := ephemeralLow()
	for range 200 {
		port := lowest + rand.IntN(highest-lowest)
		if _, taken := handedOut.LoadOrStore(port, true); taken {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		_ = ln.Close()
		return port
	}
	t.Fatalf("layertest: no free port in %d-%d after 200 tries", lowest, highest)
	return 0
}

// FreeEndpoint returns tcp://127.0.0.1:PORT for a FreePort.
func FreeEndpoint(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf("tcp://127.0.0.1:%d", FreePort(t))
}

// ephemeralLow reads where the kernel's ephemeral ports start (32768 when
// it cannot tell).
func ephemeralLow() int {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if fields := strings.Fields(string(data)); len(fields) == 2 {
			if n, err := strconv.Atoi(fields[0]); err == nil && n > lowest+1000 {
				return n
			}
		}
	}
	return 32768
}
