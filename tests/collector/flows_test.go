package collector

// Network flows, end to end: a TCP transfer of a known size between a server
// in a network namespace made by the test and a client on the host, and a
// connection to a closed port, as the real collector exports them (file
// exporter, OTLP JSON).

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Flows read every second and exported every second; spans and metrics to
// files.
const flowsConfig = `
receivers:
  ebpf:
    batch:
      timeout: 200ms
    metrics:
      interval: 1s
    flows:
      interval: 1s
` + filePipelines

// Every flow metric the README documents (tcp.*): nothing else may appear.
var tcpFlowMetrics = map[string]string{
	"tcp.bytes":                "By",
	"tcp.packets":              "{packet}",
	"tcp.retrans":              "{packet}",
	"tcp.new_sockets":          "{socket}",
	"tcp.active":               "{socket}",
	"tcp.rtt.average":          "s",
	"tcp.rtt.num_measurements": "{measurement}",
	"tcp.rtt":                  "s",
	"tcp.syn_timeouts":         "{connection}",
	"tcp.resets":               "{reset}",
	"tcp.handshake.duration":   "s",
	"tcp.connection.failures":  "{connection}",
}

// The server, in the namespace: one IPv4 connection, then one IPv6
// connection; on each it reads `up` bytes and answers `down` bytes, and
// keeps it open. It prints its ports and a port nothing listens on.
const flowServer = `
import socket, sys
up, down, up6, down6 = map(int, sys.argv[1:5])
closed = socket.socket(); closed.bind(("0.0.0.0", 0)); closed_port = closed.getsockname()[1]; closed.close()
s = socket.socket(); s.bind(("0.0.0.0", 0)); s.listen(4)
s6 = socket.socket(socket.AF_INET6); s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s6.bind(("::", 0)); s6.listen(4)
print(s.getsockname()[1], closed_port, s6.getsockname()[1], flush=True)
def serve(listener, up, down):
    c, _ = listener.accept()
    got = 0
    while got < up:
        b = c.recv(65536)
        if not b:
            break
        got += len(b)
    c.sendall(b"s" * down)
    print(got, flush=True)
    return c
held = [serve(s, up, down), serve(s6, up6, down6)]
sys.stdin.read()
`

// The client, on the host: a refused connection, then the IPv4 transfer,
// then the IPv6 one; prints its IPv4 ephemeral port and what it received on
// each, keeps both connections open.
const flowClient = `
import socket, sys
addr, port, closed, up, down, addr6, port6, up6, down6 = sys.argv[1:10]
c = socket.socket()
try:
    c.connect((addr, int(closed)))
    sys.exit("connected to the closed port")
except ConnectionRefusedError:
    c.close()
def transfer(addr, port, up, down, show_port):
    c = socket.create_connection((addr, int(port)))
    if show_port:
        print(c.getsockname()[1], flush=True)
    c.sendall(b"c" * int(up))
    got = 0
    while got < int(down):
        b = c.recv(65536)
        if not b:
            break
        got += len(b)
    print(got, flush=True)
    return c
held = [transfer(addr, port, up, down, True), transfer(addr6, port6, up6, down6, False)]
sys.stdin.read()
`

// kernelRetrans is the total retransmissions (tcpi_total_retrans, as `ss`
// shows it: retrans:<now>/<total>) of the established connection on local
// port `port` in namespace `ns`.
func kernelRetrans(t *testing.T, ns, port string) float64 {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "ss", "-tinH", "state", "established", "( sport = :"+port+" )").CombinedOutput()
	require.NoError(t, err, "ss: %s", out)
	fields := strings.Fields(string(out))
	require.NotEmpty(t, fields, "no established connection on port %s", port)
	for _, f := range fields {
		if rest, ok := strings.CutPrefix(f, "retrans:"); ok {
			_, total, found := strings.Cut(rest, "/")
			require.True(t, found, "ss field %q", f)
			n, err := strconv.Atoi(total)
			require.NoError(t, err, "ss field %q", f)
			return float64(n)
		}
	}
	return 0
}

// flowPoint is one sum or gauge data point with its resource; value is the
// point's number whatever its type.
type flowPoint struct {
	resource pcommon.Map
	name     string
	unit     string
	attrs    pcommon.Map
	value    float64
	hist     bool // a histogram: value is its count
}

func (p flowPoint) pid() int64 {
	v, _ := p.resource.Get("process.pid")
	return v.Int()
}

func (p flowPoint) attr(key string) string {
	v, ok := p.attrs.Get(key)
	if !ok {
		return ""
	}
	return v.AsString()
}

func (p flowPoint) String() string {
	return fmt.Sprintf("%s pid=%d %v = %v", p.name, p.pid(), p.attrs.AsRaw(), p.value)
}

// readFlowPoints parses the file exporter's metrics output: every tcp.*
// point, in export order.
func readFlowPoints(t *testing.T, path string) []flowPoint {
	t.Helper()
	var points []flowPoint
	eachExportedMetric(t, path, func(resource pcommon.Map, m pmetric.Metric) {
		if !strings.HasPrefix(m.Name(), "tcp.") {
			return
		}
		add := func(attrs pcommon.Map, v float64, hist bool) {
			points = append(points, flowPoint{resource, m.Name(), m.Unit(), attrs, v, hist})
		}
		number := func(dps pmetric.NumberDataPointSlice) {
			for d := 0; d < dps.Len(); d++ {
				dp := dps.At(d)
				v := dp.DoubleValue()
				if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
					v = float64(dp.IntValue())
				}
				add(dp.Attributes(), v, false)
			}
		}
		switch m.Type() {
		case pmetric.MetricTypeSum:
			number(m.Sum().DataPoints())
		case pmetric.MetricTypeGauge:
			number(m.Gauge().DataPoints())
		case pmetric.MetricTypeHistogram:
			dps := m.Histogram().DataPoints()
			for d := 0; d < dps.Len(); d++ {
				add(dps.At(d).Attributes(), float64(dps.At(d).Count()), true)
			}
		}
	})
	return points
}

// flowPointsOf returns the points of process pid.
func flowPointsOf(points []flowPoint, pid int) []flowPoint {
	var out []flowPoint
	for _, p := range points {
		if p.pid() == int64(pid) {
			out = append(out, p)
		}
	}
	return out
}

// lastValue is the value of the latest point named name whose attributes
// include want (cumulative sums: the total so far); -1 when there is none.
func lastValue(points []flowPoint, name string, want map[string]string) float64 {
	v := -1.0
	for _, p := range points {
		if p.name != name {
			continue
		}
		match := true
		for k, w := range want {
			if p.attr(k) != w {
				match = false
				break
			}
		}
		if match {
			v = p.value
		}
	}
	return v
}

func describeFlowPoints(points []flowPoint) string {
	seen := map[string]bool{}
	var lines []string
	for _, p := range points {
		if s := p.String(); !seen[s] {
			seen[s] = true
			lines = append(lines, s)
		}
	}
	sort.Strings(lines)
	return "\n  " + strings.Join(lines, "\n  ")
}

// netns is a network namespace joined to the host by a veth pair.
type netns struct {
	name, hostAddr, nsAddr string
	hostAddr6, nsAddr6     string
}

func newNetns(t *testing.T) *netns {
	t.Helper()
	n := os.Getpid()%250 + 1
	ns := &netns{
		name:     fmt.Sprintf("oe-e2e-flows-%d", os.Getpid()),
		hostAddr: fmt.Sprintf("10.202.%d.1", n),
		nsAddr:   fmt.Sprintf("10.202.%d.2", n),
		// As the receiver writes them (Rust's canonical form).
		hostAddr6: fmt.Sprintf("fd00:202:%x::1", n),
		nsAddr6:   fmt.Sprintf("fd00:202:%x::2", n),
	}
	hostDev, nsDev := fmt.Sprintf("oegh%d", n), fmt.Sprintf("oegn%d", n)
	ip := func(args ...string) {
		out, err := exec.Command("ip", args...).CombinedOutput()
		require.NoError(t, err, "ip %v: %s", args, out)
	}
	_ = exec.Command("ip", "netns", "del", ns.name).Run()
	_ = exec.Command("ip", "link", "del", hostDev).Run()
	ip("netns", "add", ns.name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns.name).Run() })
	ip("link", "add", hostDev, "type", "veth", "peer", "name", nsDev, "netns", ns.name)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", hostDev).Run() })
	ip("addr", "add", ns.hostAddr+"/30", "dev", hostDev)
	ip("link", "set", hostDev, "up")
	ip("-n", ns.name, "addr", "add", ns.nsAddr+"/30", "dev", nsDev)
	ip("-n", ns.name, "link", "set", nsDev, "up")
	ip("-n", ns.name, "link", "set", "lo", "up")
	// nodad: usable at once, not after duplicate address detection.
	ip("-6", "addr", "add", ns.hostAddr6+"/64", "dev", hostDev, "nodad")
	ip("-n", ns.name, "-6", "addr", "add", ns.nsAddr6+"/64", "dev", nsDev, "nodad")
	return ns
}

// pyProc is a Python script run by the test, its output read line by line
// and its stdin held open (closing it ends the script).
type pyProc struct {
	*proc
	read  int // lines of output already returned
	stdin io.WriteCloser
}

func startPython(t *testing.T, name string, env []string, argv ...string) *pyProc {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(cleanEnv(), env...)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	return &pyProc{proc: startProc(t, name, cmd), stdin: stdin}
}

// line waits for the script's next line of output, split into fields.
func (p *pyProc) line(t *testing.T) []string {
	t.Helper()
	var fields []string
	ok := eventually(30*time.Second, func() bool {
		lines := strings.SplitAfter(p.out.String(), "\n")
		if len(lines) > p.read+1 || (len(lines) == p.read+1 && strings.HasSuffix(lines[p.read], "\n")) {
			fields = strings.Fields(lines[p.read])
			return true
		}
		return p.exited()
	})
	require.True(t, ok && fields != nil, "%s: no line %d of output:\n%s", p.name, p.read+1, p.out.String())
	p.read++
	return fields
}

// TestFlowsTransferAndRefusal: bytes per direction within 1% of the
// transfers (IPv4 and IPv6) on both ends, one new and one active connection each, the
// refused attempt counted by reason; each side's resource is its own
// process, its peer the other end's address and the listening port (never
// the client's ephemeral port); only documented names and units.
func TestFlowsTransferAndRefusal(t *testing.T) {
	requireRoot(t)
	const up, down = 3 << 20, 5 << 20
	const up6, down6 = 1 << 20, 1000
	ns := newNetns(t)
	_, dir := startCollectorWithConfig(t, flowsConfig)
	metricsPath := filepath.Join(dir, "metrics.json")

	server := startPython(t, "flow server", []string{"OTEL_SERVICE_NAME=flows-server"},
		"ip", "netns", "exec", ns.name, "python3", "-c", flowServer,
		strconv.Itoa(up), strconv.Itoa(down), strconv.Itoa(up6), strconv.Itoa(down6))
	ports := server.line(t)
	require.Len(t, ports, 3)
	port, closed, port6 := ports[0], ports[1], ports[2]
	client := startPython(t, "flow client", []string{"OTEL_SERVICE_NAME=flows-client", "OTEL_RESOURCE_ATTRIBUTES=service.namespace=e2e"},
		"python3", "-c", flowClient, ns.nsAddr, port, closed, strconv.Itoa(up), strconv.Itoa(down),
		ns.nsAddr6, port6, strconv.Itoa(up6), strconv.Itoa(down6))
	ephemeral := client.line(t)[0]
	require.Equal(t, []string{strconv.Itoa(down)}, client.line(t), "client received")
	require.Equal(t, []string{strconv.Itoa(up)}, server.line(t), "server received")
	require.Equal(t, []string{strconv.Itoa(down6)}, client.line(t), "client received over IPv6")
	require.Equal(t, []string{strconv.Itoa(up6)}, server.line(t), "server received over IPv6")
	spid, cpid := server.cmd.Process.Pid, client.cmd.Process.Pid

	clientSide := map[string]string{
		"network.peer.address": ns.nsAddr, "server.port": port, "ebpf_receiver.flow.role": "client",
		"network.transport": "tcp", "network.type": "ipv4",
	}
	serverSide := map[string]string{
		"network.peer.address": ns.hostAddr, "server.port": port, "ebpf_receiver.flow.role": "server",
		"network.transport": "tcp", "network.type": "ipv4",
	}
	clientSide6 := map[string]string{
		"network.peer.address": ns.nsAddr6, "server.port": port6, "ebpf_receiver.flow.role": "client",
		"network.transport": "tcp", "network.type": "ipv6",
	}
	serverSide6 := map[string]string{
		"network.peer.address": ns.hostAddr6, "server.port": port6, "ebpf_receiver.flow.role": "server",
		"network.transport": "tcp", "network.type": "ipv6",
	}
	dirn := func(side map[string]string, d string) map[string]string {
		return labels(side, map[string]string{"network.io.direction": d})
	}
	refused := map[string]string{"network.peer.address": ns.nsAddr, "server.port": closed, "error.type": "connection_refused"}
	within := func(got float64, want int) bool { return got >= float64(want)*0.99 && got <= float64(want)*1.01 }
	var points []flowPoint
	done := func() bool {
		points = readFlowPoints(t, metricsPath)
		c, s := flowPointsOf(points, cpid), flowPointsOf(points, spid)
		return within(lastValue(c, "tcp.bytes", dirn(clientSide, "transmit")), up) &&
			within(lastValue(c, "tcp.bytes", dirn(clientSide, "receive")), down) &&
			within(lastValue(s, "tcp.bytes", dirn(serverSide, "receive")), up) &&
			within(lastValue(s, "tcp.bytes", dirn(serverSide, "transmit")), down) &&
			lastValue(c, "tcp.connection.failures", refused) == 1 &&
			lastValue(c, "tcp.active", clientSide) == 1 && lastValue(s, "tcp.active", serverSide) == 1 &&
			within(lastValue(c, "tcp.bytes", dirn(clientSide6, "transmit")), up6) &&
			within(lastValue(c, "tcp.bytes", dirn(clientSide6, "receive")), down6) &&
			within(lastValue(s, "tcp.bytes", dirn(serverSide6, "receive")), up6) &&
			within(lastValue(s, "tcp.bytes", dirn(serverSide6, "transmit")), down6) &&
			lastValue(c, "tcp.active", clientSide6) == 1 && lastValue(s, "tcp.active", serverSide6) == 1
	}
	mine := func() string {
		return describeFlowPoints(append(flowPointsOf(points, cpid), flowPointsOf(points, spid)...))
	}
	require.True(t, eventually(metricsTimeout, done), "flows of the transfer not exported within %v:%s", metricsTimeout, mine())
	// Several passes and exports later, nothing is counted twice.
	require.True(t, stays(3*time.Second, done), "flows of the transfer held, then changed:%s", mine())

	c, s := flowPointsOf(points, cpid), flowPointsOf(points, spid)
	t.Logf("client sent %v of %d, received %v of %d", lastValue(c, "tcp.bytes", dirn(clientSide, "transmit")), up,
		lastValue(c, "tcp.bytes", dirn(clientSide, "receive")), down)
	assert.Equal(t, 1.0, lastValue(c, "tcp.new_sockets", clientSide), "client tcp.new_sockets:%s", mine())
	assert.Equal(t, 1.0, lastValue(s, "tcp.new_sockets", serverSide), "server tcp.new_sockets:%s", mine())
	assert.Equal(t, 1.0, lastValue(c, "tcp.handshake.duration", clientSide), "client handshakes:%s", mine())
	// The refused attempt is no connection: its series has no bytes,
	// packets or socket counts, not even zeros.
	for _, name := range []string{"tcp.bytes", "tcp.packets", "tcp.new_sockets", "tcp.active"} {
		assert.Equal(t, -1.0, lastValue(c, name, map[string]string{"server.port": closed}), "%s of the refused attempt:%s", name, mine())
	}
	// A veth loses nothing, yet a loaded machine can make the kernel
	// retransmit (CI once saw 45): the count is the kernel's own.
	assert.Equal(t, kernelRetrans(t, ns.name, port), lastValue(s, "tcp.retrans", serverSide), "tcp.retrans of the server:%s", mine())
	assert.Greater(t, lastValue(c, "tcp.rtt.average", clientSide), 0.0, "client RTT")

	t.Run("resource is the local process", func(t *testing.T) {
		for _, side := range []struct {
			points  []flowPoint
			service string
		}{{c, "flows-client"}, {s, "flows-server"}} {
			require.NotEmpty(t, side.points)
			for _, p := range side.points {
				name, _ := p.resource.Get("service.name")
				exe, _ := p.resource.Get("process.executable.name")
				require.Equal(t, side.service, name.AsString(), "%s", p)
				require.True(t, strings.HasPrefix(exe.AsString(), "python3"), "process.executable.name %q", exe.AsString())
			}
		}
		ns, _ := c[0].resource.Get("service.namespace")
		assert.Equal(t, "e2e", ns.AsString(), "OTEL_RESOURCE_ATTRIBUTES of the client")
	})

	t.Run("peers and ports", func(t *testing.T) {
		for _, p := range append(append([]flowPoint{}, c...), s...) {
			require.NotEqual(t, ephemeral, p.attr("server.port"), "the client's ephemeral port as server.port: %s", p)
			require.Contains(t, []string{port, closed, port6}, p.attr("server.port"), "%s", p)
			require.Empty(t, p.attr("network.peer.port"), "no peer port on a flow: %s", p)
		}
		// The peer is a process on this host: its service.name names it.
		assert.Equal(t, 1.0, lastValue(c, "tcp.new_sockets", labels(clientSide, map[string]string{"service.peer.name": "flows-server"})), "%s", mine())
		assert.Equal(t, 1.0, lastValue(s, "tcp.new_sockets", labels(serverSide, map[string]string{"service.peer.name": "flows-client"})), "%s", mine())
	})

	t.Run("names and units", func(t *testing.T) {
		seen := map[string]bool{}
		for _, p := range append(append([]flowPoint{}, c...), s...) {
			unit, ok := tcpFlowMetrics[p.name]
			require.True(t, ok, "undocumented flow metric %s", p.name)
			require.Equal(t, unit, p.unit, "unit of %s", p.name)
			seen[p.name] = true
		}
		for _, name := range []string{"tcp.bytes", "tcp.packets", "tcp.retrans", "tcp.new_sockets", "tcp.active",
			"tcp.rtt.average", "tcp.rtt.num_measurements", "tcp.rtt", "tcp.handshake.duration", "tcp.connection.failures"} {
			assert.True(t, seen[name], "no %s", name)
		}
	})
}
