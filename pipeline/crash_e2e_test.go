package main

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"pipehost/connector/nuorder/fakeapi"
)

// TestRandomCrashesLoseAndRepeatNothing kills the host or its plugin with
// SIGKILL at random moments of an orders run into Parquet (once or twice
// per trial), then lets a run finish, and checks that every order is in the
// lake exactly once and that no plugin process outlives its host. CI runs 3
// trials; more with PIPEHOST_CRASH_TRIALS:
//
//	PIPEHOST_CRASH_TRIALS=25 go test ./pipeline -run RandomCrashes -v
func TestRandomCrashesLoseAndRepeatNothing(t *testing.T) {
	trials := 3
	if v, err := strconv.Atoi(os.Getenv("PIPEHOST_CRASH_TRIALS")); err == nil && v > 0 {
		trials = v
	}
	cat := fakeapi.Catalog{Seed: 127, Products: 20, Companies: 20, Orders: 3000}
	srv := serveFake(t, cat)
	want := nonPendingOrders(cat)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	lost, repeated, orphans, kills := 0, 0, 0, 0
	for trial := 1; trial <= trials; trial++ {
		path := incrementalFile(t, srv.URL(), cat)
		dir := filepath.Dir(path)
		for k := 0; k < 1+rng.IntN(2); k++ {
			cmd := exec.Command(filepath.Join(binDir, "pipeline"), "run", "-f", path, "orders")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), credEnv(e2eCreds)...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Duration(50+rng.IntN(1500)) * time.Millisecond)
			plugins := childrenOf(cmd.Process.Pid)
			victim := "host"
			if len(plugins) > 0 && rng.IntN(3) == 0 {
				victim = "plugin"
				for _, pid := range plugins {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			} else {
				cmd.Process.Signal(syscall.SIGKILL)
			}
			cmd.Wait()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || (ws.ExitStatus() == 0 && !ws.Signaled()) {
				t.Logf("trial %d: the run had finished before the kill", trial)
				continue
			}
			kills++
			for _, pid := range plugins {
				deadline := time.Now().Add(3 * time.Second)
				for alive(pid) && time.Now().Before(deadline) {
					time.Sleep(50 * time.Millisecond)
				}
				if alive(pid) {
					orphans++
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			t.Logf("trial %d: killed the %s", trial, victim)
		}
		if r := runPipeline(t, dir, credEnv(e2eCreds), "run", "-f", path, "orders"); r.code != 0 {
			t.Fatalf("trial %d: the run after the kills: exit %d\n%s", trial, r.code, r.stderr)
		}
		count := map[string]int{}
		files, _ := filepath.Glob(filepath.Join(dir, "out", "orders", "*.parquet"))
		for _, id := range idsIn(t, files, "_id") {
			count[id]++
		}
		for _, id := range want {
			switch n := count[id]; {
			case n == 0:
				lost++
			case n > 1:
				repeated += n - 1
			}
		}
		if len(count) != len(want) {
			t.Fatalf("trial %d: %d distinct orders in the lake, want %d", trial, len(count), len(want))
		}
	}
	t.Logf("%d trials, %d kills mid-run, %d orders each: %d lost, %d repeated, %d orphan plugins", trials, kills, len(want), lost, repeated, orphans)
	if lost+repeated+orphans != 0 {
		t.Fatalf("%d lost, %d repeated, %d orphan plugins", lost, repeated, orphans)
	}
}
