// Command bench measures the NuOrder orders path end to end and prints one
// RESULT line per catalog size (make bench):
//
//	RESULT orders=N json_mb=… e2e_mb_s=… floor_ratio=… plugin_ratio=… host_rss_mib=… plugin_rss_mib=… requests=… … duckdb_ratio=… [size_ratio=… scaling=…]
//
// scaling= (on every size after the first) is the plugin run's time over
// the size before's: 10.0 for 10x the orders is linear.
//
// For each size it starts the fake NuOrder API as its own process, serving
// order listings rendered once into files (so the fake's own JSON encoding
// is not measured), and then, one after the other on the same listings:
//
//   - the floor: a plain Go client downloading the status listings the
//     pipelines read and discarding the bytes;
//   - the plugin run: bin/pipeline running the orders and order_lines
//     pipelines into Parquet, through bin/nuorder-plugin, in one shared read;
//   - the in-process run: the same with the connector linked into the host
//     (bin/pipeline-inprocess, built with -tags inprocess);
//   - with -separate, the two pipelines run one after the other (two reads),
//     to show what the shared read saves in requests and bytes;
//   - DuckDB's read_json → Parquet on the same JSON files, where the npm
//     package @duckdb/node-api is at hand (PIPEHOST_TEST_DUCKDB), never a
//     build dependency.
//
// Peak RSS (VmHWM) and CPU time of the host and of the plugin are sampled
// from /proc every 50 ms while they run; DuckDB's from its rusage.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dghubble/oauth1"

	"pipehost/connector/nuorder"
	"pipehost/connector/nuorder/fakeapi"
)

func main() {
	sizes := flag.String("sizes", "100000,1000000", "catalog sizes (orders), comma-separated")
	bin := flag.String("bin", "bin", "folder of pipeline, pipeline-inprocess and nuorder-plugin")
	work := flag.String("work", filepath.Join(os.TempDir(), "pipehost-bench"), "folder for rendered listings and outputs (listings are kept and reused)")
	separate := flag.Bool("separate", true, "also run the two pipelines one after the other, to compare requests and bytes")
	flag.Parse()
	var err error
	if *bin, err = filepath.Abs(*bin); err != nil {
		fatalf("%v", err)
	}
	var prev scale
	for _, field := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n < 1 {
			fatalf("size %q is not a positive number", field)
		}
		wall, err := benchSize(*bin, *work, n, *separate, prev)
		if err != nil {
			fatalf("orders=%d: %v", n, err)
		}
		prev = scale{orders: n, wall: wall}
	}
}

// scale is the size measured before, whose plugin run's time the next
// size's RESULT line divides its own by (scaling=: 10.0 for 10x the orders
// is linear).
type scale struct {
	orders int
	wall   time.Duration
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(1)
}

// fake is the fake NuOrder API process.
type fake struct {
	cmd      *exec.Cmd
	url      string
	listings map[string]string // status -> rendered file
}

func startFake(bin, work string, orders int) (*fake, error) {
	cmd := exec.Command(filepath.Join(bin, "nuorder-plugin"), "fake-api", "--addr", "127.0.0.1:0",
		"--orders", strconv.Itoa(orders), "--products", "2000", "--companies", "500", "--prerender", filepath.Join(work, "listings"))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	f := &fake{cmd: cmd, listings: map[string]string{}}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "fake NuOrder API on "); ok {
			f.url, _, _ = strings.Cut(rest, " ")
		}
		if rest, ok := strings.CutPrefix(line, "listing "); ok {
			status, path, _ := strings.Cut(rest, " ")
			f.listings[status] = path
		}
		if strings.HasPrefix(line, "export ") {
			break
		}
	}
	go io.Copy(io.Discard, out)
	if f.url == "" {
		cmd.Process.Kill()
		return nil, fmt.Errorf("the fake API did not say where it listens")
	}
	return f, nil
}

func (f *fake) stop() { f.cmd.Process.Kill(); f.cmd.Wait() }

// stats reads the fake's request and byte counters.
func (f *fake) stats() fakeapi.Stats {
	var st fakeapi.Stats
	resp, err := http.Get(f.url + fakeapi.StatsPath)
	if err != nil {
		return st
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(&st)
	return st
}

// run is one measured process.
type run struct {
	wall      time.Duration
	cpu       time.Duration // host and plugin
	pluginCPU time.Duration
	fakeCPU   time.Duration // the fake API's, serving the run (not in cpu)
	hostRSS   int64         // bytes
	pluginRSS int64
	requests  int
	bodyBytes int64
}

// benchSize measures one catalog size and prints its RESULT line, with
// scaling= and size_ratio= against prev when a size was measured before;
// it returns the plugin run's wall time.
func benchSize(bin, work string, orders int, separate bool, prev scale) (time.Duration, error) {
	fmt.Fprintf(os.Stderr, "bench: orders=%d: starting the fake (the first start renders the listings)\n", orders)
	f, err := startFake(bin, work, orders)
	if err != nil {
		return 0, err
	}
	defer f.stop()
	var jsonBytes int64
	for _, st := range nuorder.DefaultOrderStatuses {
		fi, err := os.Stat(f.listings[st])
		if err != nil {
			return 0, fmt.Errorf("rendered listing of %s: %w", st, err)
		}
		jsonBytes += fi.Size()
	}
	jsonMB := float64(jsonBytes) / 1e6

	floor, err := floorRun(f.url)
	if err != nil {
		return 0, fmt.Errorf("floor: %w", err)
	}
	report(orders, "floor", floor, jsonMB)
	plugin, err := pipelineRun(f, filepath.Join(bin, "pipeline"), filepath.Join(work, fmt.Sprintf("plugin-%d", orders)), "orders", "order_lines")
	if err != nil {
		return 0, fmt.Errorf("plugin run: %w", err)
	}
	report(orders, "plugin", plugin, jsonMB)
	inproc, err := pipelineRun(f, filepath.Join(bin, "pipeline-inprocess"), filepath.Join(work, fmt.Sprintf("inprocess-%d", orders)), "orders", "order_lines")
	if err != nil {
		return 0, fmt.Errorf("in-process run: %w", err)
	}
	report(orders, "in-process", inproc, jsonMB)
	extra := ""
	if separate {
		dir := filepath.Join(work, fmt.Sprintf("separate-%d", orders))
		a, err := pipelineRun(f, filepath.Join(bin, "pipeline"), dir, "orders")
		if err != nil {
			return 0, fmt.Errorf("separate run: %w", err)
		}
		b, err := pipelineRun(f, filepath.Join(bin, "pipeline"), dir, "order_lines")
		if err != nil {
			return 0, fmt.Errorf("separate run: %w", err)
		}
		sep := run{wall: a.wall + b.wall, cpu: a.cpu + b.cpu, requests: a.requests + b.requests, bodyBytes: a.bodyBytes + b.bodyBytes}
		report(orders, "separate", sep, jsonMB)
		extra = fmt.Sprintf(" separate_requests=%d separate_mb=%.0f", sep.requests, float64(sep.bodyBytes)/1e6)
	}
	if duck, err := duckdbRun(f, filepath.Join(work, fmt.Sprintf("duckdb-%d", orders))); err != nil {
		fmt.Fprintf(os.Stderr, "bench: orders=%d: DuckDB not measured: %v\n", orders, err)
	} else {
		report(orders, "duckdb", duck, jsonMB)
		extra += fmt.Sprintf(" duckdb_ratio=%.2f duckdb_rss_mib=%.0f", plugin.wall.Seconds()/duck.wall.Seconds(), mib(duck.hostRSS))
	}
	if prev.orders > 0 {
		extra += fmt.Sprintf(" size_ratio=%.1f scaling=%.2f", float64(orders)/float64(prev.orders), plugin.wall.Seconds()/prev.wall.Seconds())
	}
	fmt.Printf("RESULT orders=%d json_mb=%.0f e2e_mb_s=%.1f floor_ratio=%.2f plugin_ratio=%.2f host_rss_mib=%.0f plugin_rss_mib=%.0f requests=%d mb_downloaded=%.0f cpu_s=%.1f plugin_cpu_s=%.1f fake_cpu_s=%.1f%s\n",
		orders, jsonMB, jsonMB/plugin.wall.Seconds(), plugin.wall.Seconds()/floor.wall.Seconds(), plugin.wall.Seconds()/inproc.wall.Seconds(),
		mib(plugin.hostRSS), mib(plugin.pluginRSS), plugin.requests, float64(plugin.bodyBytes)/1e6, plugin.cpu.Seconds(), plugin.pluginCPU.Seconds(), plugin.fakeCPU.Seconds(), extra)
	return plugin.wall, nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func report(orders int, what string, r run, jsonMB float64) {
	fmt.Fprintf(os.Stderr, "bench: orders=%d %-10s wall %6.1fs  %7.1f MB/s of JSON  cpu %6.1fs (plugin %5.1fs, fake %5.1fs)  rss host %4.0f MiB plugin %4.0f MiB  %d requests, %.0f MB\n",
		orders, what, r.wall.Seconds(), jsonMB/r.wall.Seconds(), r.cpu.Seconds(), r.pluginCPU.Seconds(), r.fakeCPU.Seconds(), mib(r.hostRSS), mib(r.pluginRSS), r.requests, float64(r.bodyBytes)/1e6)
}

// floorRun downloads the status listings the pipelines read, signed as the
// connector signs them, and discards the bytes: what the network and the
// fake cost before any decoding.
func floorRun(baseURL string) (run, error) {
	sc := fakeapi.SandboxCredentials
	hc := oauth1.NewConfig(sc.ConsumerKey, sc.ConsumerSecret).Client(context.Background(), oauth1.NewToken(sc.Token, sc.TokenSecret))
	start := time.Now()
	var r run
	for _, st := range nuorder.DefaultOrderStatuses {
		resp, err := hc.Get(baseURL + "/api/orders/" + st + "/detail")
		if err != nil {
			return r, err
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return r, err
		}
		if resp.StatusCode != http.StatusOK {
			return r, fmt.Errorf("%s listing: HTTP %d", st, resp.StatusCode)
		}
		r.requests++
		r.bodyBytes += n
	}
	r.wall = time.Since(start)
	return r, nil
}

// pipelineRun runs the orders pipelines of a fresh folder with a host
// binary and measures it.
func pipelineRun(f *fake, host, dir string, pipelines ...string) (run, error) {
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return run{}, err
	}
	hcl := fmt.Sprintf(`
connector "nuorder" {
  plugin = %q
  config {
    base_url           = %q
    cursor_lag_seconds = 0
    consumer_key       = env("NUORDER_CONSUMER_KEY")
    consumer_secret    = env("NUORDER_CONSUMER_SECRET")
    token              = env("NUORDER_TOKEN")
    token_secret       = env("NUORDER_TOKEN_SECRET")
  }
}
sink "parquet" "lake" {
  path = "out"
}
pipeline "orders" {
  from = connector.nuorder.orders
  to   = sink.parquet.lake
}
pipeline "order_lines" {
  from = connector.nuorder.order_lines
  to   = sink.parquet.lake
}
`, filepath.Join(filepath.Dir(host), "nuorder-plugin"), f.url)
	file := filepath.Join(dir, "pipeline.hcl")
	if err := os.WriteFile(file, []byte(hcl), 0o644); err != nil {
		return run{}, err
	}
	sc := fakeapi.SandboxCredentials
	cmd := exec.Command(host, append([]string{"run", "-f", file, "--log-level", "warn"}, pipelines...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NUORDER_CONSUMER_KEY="+sc.ConsumerKey, "NUORDER_CONSUMER_SECRET="+sc.ConsumerSecret,
		"NUORDER_TOKEN="+sc.Token, "NUORDER_TOKEN_SECRET="+sc.TokenSecret)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	before := f.stats()
	fakeBefore := procCPU(f.cmd.Process.Pid)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return run{}, err
	}
	stop := make(chan struct{})
	sampled := make(chan samples, 1)
	go func() { sampled <- sample(cmd.Process.Pid, stop) }()
	err := cmd.Wait()
	wall := time.Since(start)
	close(stop)
	after := f.stats()
	sm := <-sampled
	// The kernel's rusage of the host counts the plugin too once the host
	// has reaped it (maxrss is then the larger of the two): each process is
	// measured on its own from /proc instead, every 50 ms while it runs.
	r := run{wall: wall, hostRSS: sm.hostRSS, pluginRSS: sm.pluginRSS, cpu: sm.hostCPU + sm.pluginCPU, pluginCPU: sm.pluginCPU,
		fakeCPU:  procCPU(f.cmd.Process.Pid) - fakeBefore,
		requests: after.Requests - before.Requests, bodyBytes: after.BodyBytes - before.BodyBytes}
	if err != nil {
		return r, fmt.Errorf("%v\n%s%s", err, stdout.String(), stderr.String())
	}
	return r, nil
}

// samples are what sample saw of a host and its plugin.
type samples struct {
	hostRSS, pluginRSS int64 // peak (VmHWM), bytes
	hostCPU, pluginCPU time.Duration
}

// sample follows a host process and its children until stop, keeping the
// last CPU times and the peak RSS each reported.
func sample(host int, stop <-chan struct{}) samples {
	var s samples
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if hwm := procStatusKB(host, "VmHWM:") * 1024; hwm > s.hostRSS {
			s.hostRSS = hwm
		}
		if cpu := procCPU(host); cpu > s.hostCPU {
			s.hostCPU = cpu
		}
		for _, pid := range children(host) {
			if hwm := procStatusKB(pid, "VmHWM:") * 1024; hwm > s.pluginRSS {
				s.pluginRSS = hwm
			}
			if cpu := procCPU(pid); cpu > s.pluginCPU {
				s.pluginCPU = cpu
			}
		}
		select {
		case <-stop:
			return s
		case <-tick.C:
		}
	}
}

// children lists the pids whose parent is pid, from /proc/*/stat.
func children(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		if f := strings.Fields(s[i+1:]); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, n)
		}
	}
	return out
}

func procStatusKB(pid int, key string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// procCPU is a process's user + system CPU time from /proc/PID/stat.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

// duckdbRun converts the same listings to Parquet with DuckDB's read_json:
// one file of orders and one of order lines (line items x sizes unnested).
func duckdbRun(f *fake, dir string) (run, error) {
	pkg := os.Getenv("PIPEHOST_TEST_DUCKDB")
	if pkg == "" {
		return run{}, fmt.Errorf("PIPEHOST_TEST_DUCKDB is not set (run under scripts/with-duckdb.sh)")
	}
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return run{}, err
	}
	var files []string
	for _, st := range nuorder.DefaultOrderStatuses {
		files = append(files, "'"+f.listings[st]+"'")
	}
	list := "[" + strings.Join(files, ", ") + "]"
	script := fmt.Sprintf(`
const duckdb = require(%q);
(async () => {
  const db = await duckdb.DuckDBInstance.create(':memory:');
  const c = await db.connect();
  const src = "read_json(%s, format='array', union_by_name=true, maximum_object_size=67108864)";
  await c.run("COPY (SELECT * FROM " + src + ") TO '%s/orders.parquet' (FORMAT parquet, COMPRESSION zstd)");
  await c.run("COPY (SELECT o._id AS order_id, o.status, li.id AS line_id, sz.size, sz.quantity, sz.price FROM " + src + " AS o, unnest(o.line_items) AS t(li), unnest(li.sizes) AS u(sz)) TO '%s/order_lines.parquet' (FORMAT parquet, COMPRESSION zstd)");
})().catch(e => { console.error(e); process.exit(1); });
`, pkg, list, dir, dir)
	js := filepath.Join(dir, "convert.js")
	if err := os.WriteFile(js, []byte(script), 0o644); err != nil {
		return run{}, err
	}
	cmd := exec.Command("node", js)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	wall := time.Since(start)
	if err != nil {
		return run{}, fmt.Errorf("%v: %s", err, out)
	}
	r := run{}
	r.hostRSS = peakRSS(cmd.ProcessState)
	r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	r.wall = wall
	return r, nil
}
