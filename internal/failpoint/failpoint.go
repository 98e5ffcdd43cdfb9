// Package failpoint lets tests stop the host at an exact moment, to kill it
// there: the one place the failpoints are read. Nothing arms one in normal
// use.
package failpoint

import "os"

// Env names the environment variable that arms a failpoint by name
// (before-commit, after-sink-commit, after-s3-commit-record; late-turn
// makes serve start each turn 600 ms late, as a replica whose clock is behind).
const Env = "PIPEHOST_FAILPOINT"

// Armed says whether the failpoint name is armed.
func Armed(name string) bool { return os.Getenv(Env) == name }
