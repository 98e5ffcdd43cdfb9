package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"pipehost/connector/nuorder/api"
	"pipehost/connector/nuorder/fakeapi"
)

// childrenOf returns the pids of the processes whose parent is pid.
func childrenOf(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut after ')'.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

func alive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z" // a zombie has exited
}

// TestThePluginExitsWhenItsHostIsKilled: after the host dies (SIGKILL, no
// chance to stop its plugins), the plugin process does not live on as an
// orphan: it exits within a couple of seconds.
func TestThePluginExitsWhenItsHostIsKilled(t *testing.T) {
	srv := startFake(t, 5)
	srv.InjectFault(api.ProductList, fakeapi.Fault{Delay: time.Minute})
	path := nuorderFile(t, srv.URL(), `
pipeline "products" {
  from = connector.nuorder.products
  to   = sink.parquet.lake
}`)
	cmd := exec.Command(filepath.Join(binDir, "pipeline"), "run", "-f", path)
	cmd.Dir = filepath.Dir(path)
	cmd.Env = append(os.Environ(), credEnv(e2eCreds)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var plugins []int
	for deadline := time.Now().Add(30 * time.Second); len(plugins) == 0 || srv.Requests(api.ProductList) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the run never reached NuOrder")
		}
		time.Sleep(50 * time.Millisecond)
		plugins = childrenOf(cmd.Process.Pid)
	}
	var sockets []string
	for _, pid := range plugins {
		sockets = append(sockets, socketsOf(pid)...)
	}
	killed := time.Now()
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	for _, pid := range plugins {
		deadline := time.Now().Add(3 * time.Second)
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("plugin process %d still runs 3 s after its host was killed", pid)
		}
	}
	if took := time.Since(killed); took > time.Second {
		t.Fatalf("the plugin exited %v after its host was killed, want within 1 s", took)
	}
	if len(sockets) == 0 {
		t.Fatal("found no socket of the plugin")
	}
	for _, s := range sockets {
		if _, err := os.Lstat(s); err == nil {
			t.Fatalf("the plugin left its socket file %s", s)
		}
	}
	t.Logf("the plugin exited %v after its host, removing %v", time.Since(killed).Round(10*time.Millisecond), sockets)
}

// socketsOf lists the Unix socket files a process has open, from /proc.
func socketsOf(pid int) []string {
	inodes := map[string]bool{}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		if link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	b, _ := os.ReadFile("/proc/net/unix")
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 8 && inodes[f[6]] && strings.HasPrefix(f[7], "/") {
			out = append(out, f[7])
		}
	}
	return out
}
