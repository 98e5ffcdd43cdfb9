package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"pipehost"
)

// cmdInit writes the starter pipeline file into dir (made if missing), and
// never over an existing file.
func cmdInit(dir string, stdout, stderr io.Writer) int {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return exitFailed
	}
	path := filepath.Join(dir, defaultFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		fmt.Fprintf(stderr, "Error: %s exists; pipeline init does not overwrite it (remove it, or init another folder)\n", path)
		return exitFailed
	}
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return exitFailed
	}
	_, err = f.WriteString(pipehost.DefaultPipeline)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(stderr, "Error: writing %s: %v\n", path, err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "Wrote %s. Next: pipeline validate --sandbox -f %s, then pipeline run --sandbox -f %s.\n", path, path, path)
	return exitOK
}
