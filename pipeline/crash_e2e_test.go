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
	cat := fakeapi.Catalog{Seed: 127, Products: 20, Companies: 20, Orders: 3000}
	srv := serveFake(t, cat)
	randomCrashes(t, cat,
		func() (string, []string) { return incrementalFile(t, srv.URL(), cat), credEnv(e2eCreds) },
		func(dir string) []string {
			files, _ := filepath.Glob(filepath.Join(dir, "out", "orders", "*.parquet"))
			return idsIn(t, files, "_id")
		})
}

// TestRandomCrashesLoseAndRepeatNothingInObjectStorage is the same trials
// into the S3 sink (date-partitioned) on the test's S3 server.
func TestRandomCrashesLoseAndRepeatNothingInObjectStorage(t *testing.T) {
	t.Parallel()
	cat := fakeapi.Catalog{Seed: 131, Products: 20, Companies: 20, Orders: 3000}
	srv := serveFake(t, cat)
	var lake *s3Lake
	randomCrashes(t, cat,
		func() (string, []string) {
			lake = newS3Lake(t)
			path := lake.file(t, srv.URL(), cat, `
pipeline "orders" {
  from = connector.nuorder.orders
  to   = sink.s3.lake
}`)
			return path, append(credEnv(e2eCreds), lake.env...)
		},
		func(string) []string { return lake.orderIDs(t, "orders") })
}

// randomCrashes runs the trials: for each, setup gives a pipeline file
// (with an "orders" pipeline) and its environment, and ids lists the order
// ids in its destination once the run after the kills finished.
func randomCrashes(t *testing.T, cat fakeapi.Catalog, setup func() (string, []string), ids func(dir string) []string) {
	trials := 3
	if v, err := strconv.Atoi(os.Getenv("PIPEHOST_CRASH_TRIALS")); err == nil && v > 0 {
		trials = v
	}
	want := nonPendingOrders(cat)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	lost, repeated, orphans, kills := 0, 0, 0, 0
	for trial := 1; trial <= trials; trial++ {
		path, env := setup()
		dir := filepath.Dir(path)
		for k := 0; k < 1+rng.IntN(2); k++ {
			cmd := exec.Command(filepath.Join(binDir, "pipeline"), "run", "-f", path, "orders")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), env...)
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
		if r := runPipeline(t, dir, env, "run", "-f", path, "orders"); r.code != 0 {
			t.Fatalf("trial %d: the run after the kills: exit %d\n%s", trial, r.code, r.stderr)
		}
		count := map[string]int{}
		for _, id := range ids(dir) {
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
