package commitfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"pipehost/internal/filelock"
	"strings"
	"time"
)

// Replacement builds the new content of a folder beside it, hidden, and
// swaps it in at once, so readers see the old folder or the new one, never
// a mix (an overwrite, or a full refresh of a stream).
type Replacement struct {
	live, staging string
	lock          *os.File
}

// stagingPrefix names the hidden folders replacements are built in.
func stagingPrefix(live string) string {
	return filepath.Join(filepath.Dir(live), "."+filepath.Base(live)+".replacing-")
}

// StartReplacement creates the hidden folder the replacement of live is
// built in, beside live, and locks it for as long as the replacement lives.
func StartReplacement(live string) (*Replacement, error) {
	if err := os.MkdirAll(live, 0o755); err != nil {
		return nil, err
	}
	RemoveStaleReplacements(live)
	var b [6]byte
	rand.Read(b[:])
	staging := stagingPrefix(live) + hex.EncodeToString(b[:])
	if err := os.Mkdir(staging, 0o755); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(staging, ".writer.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err == nil {
		err = filelock.TryLock(lock)
	}
	if err != nil {
		os.RemoveAll(staging)
		return nil, fmt.Errorf("locking %s: %w", staging, err)
	}
	return &Replacement{live: live, staging: staging, lock: lock}, nil
}

// Dir is the folder the replacement is built in.
func (r *Replacement) Dir() string { return r.staging }

// Finish carries over into the replacement the entries of the live folder
// keep accepts (another pipeline's files, by hard link: no copy), then swaps
// the two folders in one step (renameat2 RENAME_EXCHANGE; where the file
// system lacks it, two renames with a moment without the folder), and
// removes the old content.
func (r *Replacement) Finish(keep func(name string) bool) error {
	entries, err := os.ReadDir(r.live)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasSuffix(name, ".tmp") || !keep(name) {
			continue
		}
		if err := os.Link(filepath.Join(r.live, name), filepath.Join(r.staging, name)); err != nil {
			return fmt.Errorf("carrying %s over: %w", name, err)
		}
	}
	if err := Sync(r.staging); err != nil {
		return err
	}
	err = filelock.Exchange(r.staging, r.live)
	if errors.Is(err, filelock.ErrNoExchange) {
		old := r.staging + ".old"
		if err = os.Rename(r.live, old); err == nil {
			err = os.Rename(r.staging, r.live)
			r.staging = old
		}
	}
	if err != nil {
		return fmt.Errorf("swapping in the new %s: %w", r.live, err)
	}
	os.Remove(filepath.Join(r.live, ".writer.lock")) // came along with the swap
	if err := Sync(filepath.Dir(r.live)); err != nil {
		return err
	}
	r.lock.Close()
	return os.RemoveAll(r.staging) // now the old content
}

// Abandon removes the replacement; the live folder is untouched.
func (r *Replacement) Abandon() {
	r.lock.Close()
	os.RemoveAll(r.staging)
}

// RemoveStaleReplacements removes the hidden replacement folders of live
// that no live writer holds (left by a killed run).
func RemoveStaleReplacements(live string) {
	dirs, _ := filepath.Glob(stagingPrefix(live) + "*")
	for _, d := range dirs {
		fh, err := os.Open(filepath.Join(d, ".writer.lock"))
		if err != nil {
			// Without its lock file: being created right now, or the old
			// content of a swap that was not removed. Only the latter lasts.
			if fi, serr := os.Stat(d); errors.Is(err, os.ErrNotExist) && serr == nil && time.Since(fi.ModTime()) > time.Minute {
				os.RemoveAll(d)
			}
			continue
		}
		if filelock.TryLock(fh) == nil {
			os.RemoveAll(d)
		}
		fh.Close()
	}
}
