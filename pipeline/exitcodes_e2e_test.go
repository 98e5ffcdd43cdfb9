package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"pipehost/connector/nuorder/api"
	"pipehost/connector/nuorder/fakeapi"
)

// startRun starts `pipeline run` on a file and returns the command with its
// stdout and stderr buffers.
func startRun(t *testing.T, path string, env []string, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "pipeline"), append([]string{"run", "-f", path}, args...)...)
	cmd.Dir = filepath.Dir(path)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, &out, &errb
}

// waitFor polls cond for up to 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func exitCode(cmd *exec.Cmd) int {
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestSIGINTExitsWith130: an interrupted run exits 130, says it was
// interrupted and what was kept, without gRPC's doubled "context canceled".
func TestSIGINTExitsWith130(t *testing.T) {
	srv := startFake(t, 5)
	srv.InjectFault(api.ProductList, fakeapi.Fault{Delay: time.Minute})
	path := nuorderFile(t, srv.URL(), productsPipeline)
	cmd, _, stderr := startRun(t, path, credEnv(e2eCreds))
	waitFor(t, "the run to reach NuOrder", func() bool { return srv.Requests(api.ProductList) > 0 })
	cmd.Process.Signal(syscall.SIGINT)
	if code := exitCode(cmd); code != 130 {
		t.Fatalf("exit %d after SIGINT\n%s", code, stderr)
	}
	if !strings.Contains(stderr.String(), "interrupted") || strings.Contains(stderr.String(), "context canceled") {
		t.Fatalf("message after SIGINT:\n%s", stderr)
	}
}

// TestAPluginThatDiesIsNamed: when the plugin process dies mid-run, the
// error names the connector and its binary, not raw gRPC text.
func TestAPluginThatDiesIsNamed(t *testing.T) {
	srv := startFake(t, 5)
	srv.InjectFault(api.ProductList, fakeapi.Fault{Delay: time.Minute})
	path := nuorderFile(t, srv.URL(), productsPipeline)
	cmd, _, stderr := startRun(t, path, credEnv(e2eCreds))
	var plugins []int
	waitFor(t, "the run to reach NuOrder", func() bool {
		plugins = childrenOf(cmd.Process.Pid)
		return srv.Requests(api.ProductList) > 0 && len(plugins) > 0
	})
	for _, pid := range plugins {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if code := exitCode(cmd); code != 1 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr.String(), "connector plugin nuorder (") || !strings.Contains(stderr.String(), "exited unexpectedly") ||
		strings.Contains(stderr.String(), "rpc error") {
		t.Fatalf("a dead plugin's message:\n%s", stderr)
	}
}

// TestAStateStoreThatCannotBeReachedIsNotABadFile: exit 1 (a failure of the
// run's surroundings), not 2 (the file is wrong), with a message that says
// so.
func TestAStateStoreThatCannotBeReachedIsNotABadFile(t *testing.T) {
	path := numbersFile(t, `
state {
  backend = "postgres"
  dsn     = "postgres://nobody:secret-pw@127.0.0.1:1/none?connect_timeout=2"
}
pipeline "numbers" {
  from = connector.numbers.numbers
  to   = sink.parquet.lake
}`)
	r := runPipeline(t, filepath.Dir(path), nil, "run", "-f", path)
	if r.code != 1 || !strings.Contains(r.stderr, "state store cannot be used") || strings.Contains(r.stderr, "secret-pw") {
		t.Fatalf("unreachable state store: exit %d\n%s", r.code, r.stderr)
	}
}

// TestServeDoesNotLeakStateConnections: serve with the PostgreSQL state
// backend closes each run's connections; before, every scheduled run left
// a pool open.
func TestServeDoesNotLeakStateConnections(t *testing.T) {
	schema, conn := pgSchema(t)
	path := numbersFile(t, fmt.Sprintf(`
state {
  backend = "postgres"
  dsn     = env("E2E_DSN")
  schema  = %q
}
pipeline "numbers" {
  from     = connector.numbers.numbers
  to       = sink.parquet.lake
  schedule = "@every 1s"
  options  = { count = 10, batch = 10 }
}`, schema))
	// Only this serve's connections count: other packages' tests use the
	// same server at the same time.
	const app = "pipehost_serve_leak_test"
	count := func() int {
		var n int
		conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", app).Scan(&n)
		return n
	}
	cmd := exec.Command(filepath.Join(binDir, "pipeline"), "serve", "-f", path)
	cmd.Dir = filepath.Dir(path)
	dsn := pgDSN(t)
	if strings.Contains(dsn, "?") {
		dsn += "&application_name=" + app
	} else {
		dsn += "?application_name=" + app
	}
	cmd.Env = append(os.Environ(), "E2E_DSN="+dsn)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitFor(t, "four scheduled runs", func() bool { return strings.Count(stderr.String(), "scheduled run finished") >= 4 })
	during := count()
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	runs := strings.Count(stderr.String(), "scheduled run finished")
	if runs < 4 {
		t.Fatalf("%d runs\n%s", runs, stderr.String())
	}
	// One run's pool holds at most 4 connections; leaking ones pile up.
	if during > 4 {
		t.Fatalf("%d connections open after %d scheduled runs: each run leaves its pool open", during, runs)
	}
}
