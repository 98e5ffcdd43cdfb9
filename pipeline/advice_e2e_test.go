package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"pipehost/connector/nuorder/fakeapi"
)

// suggested returns the commands a message suggests: the spans between
// backquotes that start with the host's program.
func suggested(msg string) []string {
	var out []string
	for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(msg, -1) {
		if strings.HasPrefix(m[1], filepath.Join(binDir, "pipeline")+" ") {
			out = append(out, m[1])
		}
	}
	return out
}

// shell runs a command line as a user pasting it would, in dir.
func shell(t *testing.T, dir string, env []string, line string) result {
	t.Helper()
	cmd := exec.Command("sh", "-c", line)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code: code, stdout: string(out), stderr: string(out)}
}

// TestEveryCommandTheRefusalSuggestsLeavesOnlyTheRealRows: a file first run
// with --sandbox, then against a real account, is refused. Each command the
// refusal suggests is run as printed (it carries the -f the user gave: the
// run happens from another folder, through a file name with a space), and
// then the user's own run again; the destination then holds the real
// account's rows only, once each, in Parquet, PostgreSQL and object
// storage.
func TestEveryCommandTheRefusalSuggestsLeavesOnlyTheRealRows(t *testing.T) {
	t.Parallel()
	real := serveFake(t, fakeapi.Catalog{Seed: 7, Products: 35})
	// The real account's products, read into a fresh folder.
	ref := nuorderFile(t, real.URL(), productsPipeline)
	if r := runPipeline(t, filepath.Dir(ref), credEnv(e2eCreds), "run", "-f", ref); r.code != 0 {
		t.Fatalf("reference run: exit %d\n%s", r.code, r.stderr)
	}
	want := productIDs(t, filepath.Join(filepath.Dir(ref), "out", "products"))
	sandboxIDs := map[string]bool{}

	type sinkCase struct {
		name  string
		block func(t *testing.T) (hcl string, env []string, ids func() []string)
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
					rows, err := conn.Query(context.Background(), "SELECT _id FROM "+schema+".products")
					if err != nil {
						t.Fatal(err)
					}
					defer rows.Close()
					var ids []string
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
			for step := 0; ; step++ {
				// A fresh destination and state each time: sandbox first.
				sinkHCL, env, ids := sc.block(t)
				root := t.TempDir()
				os.MkdirAll(filepath.Join(root, "conf"), 0o755)
				file := filepath.Join("conf", "nuorder pipelines.hcl")
				os.WriteFile(filepath.Join(root, file), []byte(fmt.Sprintf(`
connector "nuorder" {
  plugin = %q
  config {
    base_url = %q%s
  }
}
%s
%s`, plugin("nuorder"), real.URL(), nuorderCreds, sinkHCL, strings.Replace(productsPipeline, "sink.parquet.lake", "sink."+sc.name+".lake", 1))), 0o644)
				env = append(env, credEnv(e2eCreds)...)
				if r := runPipeline(t, root, env, "run", "--sandbox", "-f", file); r.code != 0 {
					t.Fatalf("sandbox run: exit %d\n%s", r.code, r.stderr)
				}
				for _, id := range ids() {
					sandboxIDs[id] = true
				}
				r := runPipeline(t, root, env, "run", "-f", file)
				cmds := suggested(r.stderr)
				if r.code == 0 || len(cmds) < 1 {
					t.Fatalf("the real run after the sandbox one: exit %d, suggestions %q\n%s", r.code, cmds, r.stderr)
				}
				if step == len(cmds) {
					break
				}
				line := cmds[step]
				t.Logf("following %s", line)
				if !strings.Contains(line, "-f 'conf/nuorder pipelines.hcl'") {
					t.Fatalf("the suggestion %q does not carry the user's -f", line)
				}
				if r := shell(t, root, env, line); r.code != 0 {
					t.Fatalf("%s: exit %d\n%s", line, r.code, r.stdout)
				}
				// The user's own run, as before: it succeeds now.
				if r := runPipeline(t, root, env, "run", "-f", file); r.code != 0 {
					t.Fatalf("after %s, the run: exit %d\n%s", line, r.code, r.stderr)
				}
				got := ids()
				for _, id := range got {
					if sandboxIDs[id] && !contains(want, id) {
						t.Fatalf("after %s the destination still holds the sandbox's %s", line, id)
					}
				}
				if strings.Join(got, ",") != strings.Join(want, ",") {
					t.Fatalf("after %s the destination holds %d rows, want the real account's %d once each", line, len(got), len(want))
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
