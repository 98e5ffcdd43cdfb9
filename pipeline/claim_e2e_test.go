package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"pipehost/connector/nuorder/fakeapi"
)

// TestTwoHostsStartedTogetherNeverDoubleADestination: two hosts with
// separate state stores start the same pipeline into one destination at
// the same moment (a cron job and a manual run on another machine). The
// destination is claimed before its checkpoint is read, so one of them is
// refused with the lock exit code (3), naming the holder, or (when the
// first has finished before the second looks) the second finds the rows
// committed and adds none: never a doubled row. 20 trials each into one
// Parquet folder, one PostgreSQL table and one S3 prefix; both exited 0
// with every row twice before.
func TestTwoHostsStartedTogetherNeverDoubleADestination(t *testing.T) {
	t.Parallel()
	trials := 20
	if testing.Short() {
		trials = 3
	}
	srv, err := fakeapi.Start(fakeapi.Options{Credentials: e2eCreds, Catalog: fakeapi.Catalog{Seed: 5, Products: 30}, Latency: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	type sinkCase struct {
		name string
		// block returns a fresh destination's sink block, its environment
		// and a reader of its products' _id values.
		block func(t *testing.T) (string, []string, func() []string)
	}
	cases := []sinkCase{
		{"parquet", func(t *testing.T) (string, []string, func() []string) {
			dir := t.TempDir()
			return fmt.Sprintf("sink \"parquet\" \"lake\" {\n  path = %q\n}", dir), nil,
				func() []string { return productIDs(t, filepath.Join(dir, "products")) }
		}},
		{"postgres", func(t *testing.T) (string, []string, func() []string) {
			schema, conn := pgSchema(t)
			return fmt.Sprintf("sink \"postgres\" \"lake\" {\n  dsn = env(\"E2E_DSN\")\n  schema = %q\n}", schema), []string{"E2E_DSN=" + pgDSN(t)},
				func() []string {
					var ids []string
					rows, err := conn.Query(context.Background(), "SELECT _id FROM "+schema+".products")
					if err != nil {
						return nil // no table: nothing committed
					}
					defer rows.Close()
					for rows.Next() {
						var id string
						rows.Scan(&id)
						ids = append(ids, id)
					}
					sort.Strings(ids)
					return ids
				}
		}},
		{"s3", func(t *testing.T) (string, []string, func() []string) {
			l := newS3Lake(t)
			return fmt.Sprintf("sink \"s3\" \"lake\" {\n  bucket = %q\n  prefix = \"lake\"\n  endpoint = %q\n}", l.bucket, l.endpoint), l.env,
				func() []string { return l.orderIDs(t, "products") }
		}},
	}
	for _, sc := range cases {
		t.Run(sc.name, func(t *testing.T) {
			refused := 0
			for trial := 0; trial < trials; trial++ {
				sinkHCL, env, ids := sc.block(t)
				env = append(env, credEnv(e2eCreds)...)
				var files []string
				for _, host := range []string{"a", "b"} {
					files = append(files, writeFile(t, fmt.Sprintf(`
state {
  path = "state-%s"
}
connector "nuorder" {
  plugin = %q
  config {
    base_url = %q%s
  }
}
%s
pipeline "products" {
  from = connector.nuorder.products
  to   = sink.%s.lake
}`, host, plugin("nuorder"), srv.URL(), nuorderCreds, sinkHCL, sc.name)))
				}
				cmds := make([]*exec.Cmd, 2)
				outs := make([]*bytes.Buffer, 2)
				for i, f := range files {
					cmds[i] = exec.Command(filepath.Join(binDir, "pipeline"), "run", "-f", f)
					cmds[i].Dir = filepath.Dir(f)
					cmds[i].Env = append(os.Environ(), env...)
					outs[i] = &bytes.Buffer{}
					cmds[i].Stdout, cmds[i].Stderr = outs[i], outs[i]
				}
				for _, c := range cmds {
					if err := c.Start(); err != nil {
						t.Fatal(err)
					}
				}
				codes := make([]int, 2)
				for i, c := range cmds {
					c.Wait()
					codes[i] = c.ProcessState.ExitCode()
				}
				got := ids()
				if len(got) == 0 || len(got) != len(dedupe(got)) {
					t.Fatalf("trial %d: %d rows, %d distinct; exits %v\n%s\n%s", trial, len(got), len(dedupe(got)), codes, outs[0], outs[1])
				}
				for i, code := range codes {
					switch code {
					case 0:
					case 3:
						refused++
						if s := outs[i].String(); !strings.Contains(s, "is held by") || !strings.Contains(s, "pid ") {
							t.Fatalf("trial %d: refused without naming the holder:\n%s", trial, outs[i])
						}
					default:
						t.Fatalf("trial %d: host %d exited %d\n%s", trial, i, code, outs[i])
					}
				}
				if codes[0] == 3 && codes[1] == 3 {
					t.Fatalf("trial %d: both refused", trial)
				}
			}
			t.Logf("%s: %d trials, %d refused with exit 3, 0 doubled rows", sc.name, trials, refused)
		})
	}
}
