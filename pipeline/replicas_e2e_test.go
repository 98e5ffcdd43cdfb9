package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"pipehost/internal/failpoint"
)

// replica is one `pipeline serve` process and the turns it ran or failed.
type replica struct {
	cmd      *exec.Cmd
	mu       sync.Mutex
	finished map[string][]string // pipeline → turns run
	failed   []string
}

func startReplica(t *testing.T, path string, env ...string) *replica {
	t.Helper()
	r := &replica{finished: map[string][]string{}}
	r.cmd = exec.Command(filepath.Join(binDir, "pipeline"), "serve", "-f", path, "--log-format", "json")
	r.cmd.Dir = filepath.Dir(path)
	r.cmd.Env = append(os.Environ(), env...)
	stderr, _ := r.cmd.StderrPipe()
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.cmd.Process.Signal(syscall.SIGTERM); r.cmd.Wait() })
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) != nil {
				continue
			}
			r.mu.Lock()
			switch rec["@message"] {
			case "scheduled run finished":
				p, _ := rec["pipeline"].(string)
				turn, _ := rec["turn"].(string)
				r.finished[p] = append(r.finished[p], turn)
			case "scheduled run failed", "scheduled run could not start":
				r.failed = append(r.failed, sc.Text())
			}
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *replica) count(pipeline string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.finished[pipeline])
}

// TestServeReplicasRunEachTurnOnce: two serve processes on one PostgreSQL
// state store, one of them starting each turn 600 ms late (a clock behind
// the other's, so the first has finished the turn when the second starts
// it), run 20 turns of each pipeline between them with no turn run twice
// and no failure; once one is killed, the other runs the next turns.
func TestServeReplicasRunEachTurnOnce(t *testing.T) {
	t.Parallel()
	schema, _ := pgSchema(t)
	// Both pipelines write one stream's folder, at the same moments.
	path := numbersFile(t, fmt.Sprintf(`
state {
  backend = "postgres"
  dsn     = env("E2E_DSN")
  schema  = %q
}
pipeline "first" {
  from     = connector.numbers.numbers
  to       = sink.parquet.lake
  schedule = "@every 1s"
  options  = { count = 20 }
}
pipeline "second" {
  from     = connector.numbers.numbers
  to       = sink.parquet.lake
  schedule = "@every 1s"
  options  = { count = 20 }
}`, schema))
	dsn := "E2E_DSN=" + pgDSN(t)
	a := startReplica(t, path, dsn)
	b := startReplica(t, path, dsn, failpoint.Env+"=late-turn")
	pipelines := []string{"first", "second"}
	waitFor := func(what string, done func() bool) {
		t.Helper()
		for end := time.Now().Add(90 * time.Second); !done(); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("not after 90 s: %s", what)
			}
		}
	}
	waitFor("20 turns of each pipeline", func() bool {
		return a.count("first")+b.count("first") >= 20 && a.count("second")+b.count("second") >= 20
	})
	check := func() {
		t.Helper()
		for _, r := range []*replica{a, b} {
			r.mu.Lock()
			if len(r.failed) > 0 {
				t.Errorf("a replica's run failed:\n%s", r.failed[0])
			}
			r.mu.Unlock()
		}
		for _, p := range pipelines {
			seen := map[string]int{}
			a.mu.Lock()
			b.mu.Lock()
			for _, turn := range append(append([]string{}, a.finished[p]...), b.finished[p]...) {
				seen[turn]++
				if seen[turn] == 2 {
					t.Errorf("pipeline %s: turn %s ran twice (first replica %v, second %v)", p, turn, a.finished[p], b.finished[p])
				}
			}
			t.Logf("pipeline %s: %d turns run by the first replica, %d by the second", p, len(a.finished[p]), len(b.finished[p]))
			b.mu.Unlock()
			a.mu.Unlock()
		}
	}
	check()
	// Kill the replica that runs more of the turns; the other carries on.
	killed, other := a, b
	if b.count("first")+b.count("second") > a.count("first")+a.count("second") {
		killed, other = b, a
	}
	killed.cmd.Process.Kill()
	killed.cmd.Wait()
	before := map[string]int{"first": other.count("first"), "second": other.count("second")}
	waitFor("5 more turns of each pipeline by the surviving replica", func() bool {
		return other.count("first") >= before["first"]+5 && other.count("second") >= before["second"]+5
	})
	check()
}
