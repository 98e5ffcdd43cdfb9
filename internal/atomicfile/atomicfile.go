// Package atomicfile replaces a file so that a crash leaves the old content
// or the new, never a mix: written aside in the same folder, synced,
// renamed over, and the folder synced.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write replaces the file at path with b, with perm when it creates it. It
// errors when the folder cannot take the temporary file or the rename; the
// old file is then untouched.
func Write(path string, b []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	d.Sync() // Windows cannot sync a folder; the rename stands
	return nil
}
