// Package commitfile commits files into a folder atomically, together with a
// checkpoint, for the text file sinks (CSV, JSON lines).
//
// A file is written under a hidden temporary name. To commit it, a manifest
// naming the file and holding the checkpoint replaces the pipeline's previous
// manifest (written aside, synced, renamed): that rename is the commit point.
// The data file is then renamed into place. A crash between the two renames
// is rolled forward by the next Open or Checkpoint, which finishes the rename
// the manifest promises; a crash before the manifest leaves only a hidden
// temporary file. Either way the rows and the checkpoint land together.
package commitfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/url"
	"os"
	"path/filepath"
	"pipehost/internal/filelock"
	"strings"
	"time"
)

// Folder is one stream's folder, written by one pipeline.
type Folder struct {
	dir, pipeline string
}

// manifest is the commit record of a pipeline in a folder.
type manifest struct {
	File        string    `json:"file"` // base name of the last committed file
	Temp        string    `json:"temp"` // its temporary name before the rename
	Checkpoint  []byte    `json:"checkpoint,omitempty"`
	CommittedAt time.Time `json:"committed_at"`
}

// Open prepares a folder and rolls forward a commit a crash interrupted.
func Open(dir, pipeline string) (*Folder, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f := &Folder{dir: dir, pipeline: pipeline}
	_, err := f.recover() // first: it may rename the temporary file a manifest names
	RemoveStale(dir, pipeline)
	return f, err
}

func (f *Folder) manifestPath() string {
	return filepath.Join(f.dir, ".pipehost-"+url.PathEscape(f.pipeline)+".json")
}

// recover reads the manifest and finishes its rename if needed.
func (f *Folder) recover() (*manifest, error) {
	b, err := os.ReadFile(f.manifestPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", f.manifestPath(), err)
	}
	// The manifest names files of this folder only: a planted or damaged
	// one must not make the host rename anything elsewhere.
	if !plainFileName(m.File, "part-") || !plainFileName(m.Temp, ".part-") {
		return nil, fmt.Errorf("manifest %s names files outside its folder or not written by the host (file %q, temp %q): refusing it; remove the manifest if this folder is yours",
			f.manifestPath(), m.File, m.Temp)
	}
	final, tmp := filepath.Join(f.dir, m.File), filepath.Join(f.dir, m.Temp)
	if _, err := os.Stat(final); errors.Is(err, os.ErrNotExist) {
		if err := os.Rename(tmp, final); err != nil {
			return nil, fmt.Errorf("finishing the commit of %s: %w", final, err)
		}
		if err := syncDir(f.dir); err != nil {
			return nil, err
		}
	}
	return &m, nil
}

// plainFileName says whether name is a bare file name (no separator, not
// "." or "..") with the prefix the host gives its files.
func plainFileName(name, prefix string) bool {
	return name != "" && filepath.Base(name) == name && !strings.ContainsRune(name, '\\') &&
		name != "." && name != ".." && strings.HasPrefix(name, prefix)
}

// Create starts a hidden temporary file in the folder.
func (f *Folder) Create() (*os.File, error) {
	return CreateTemp(f.dir, f.pipeline)
}

// ownerTag is the part of a temporary file's name that says which pipeline
// writes it: a hash of the name, so any pipeline name makes a plain file
// name.
func ownerTag(owner string) string {
	h := fnv.New64a()
	h.Write([]byte(owner))
	return fmt.Sprintf("%016x", h.Sum64())
}

// shared is the mode of data files and manifests: readable by everyone the
// umask allows (0644 under the usual 022), like any file a tool writes, so a
// lake can be read by other users and services. os.CreateTemp makes 0600.
var shared = os.FileMode(0o666) &^ filelock.Umask()

// CreateTemp creates a hidden temporary data file in dir for the pipeline
// owner (.part-<owner's tag>-*.tmp) and holds an exclusive lock on it for
// as long as it is open, so RemoveStale can tell a file a live writer is
// filling from one a killed run left.
func CreateTemp(dir, owner string) (*os.File, error) {
	f, err := os.CreateTemp(dir, ".part-"+ownerTag(owner)+"-*.tmp")
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(shared); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	if err := filelock.TryLock(f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	return f, nil
}

// RemoveStale removes the temporary files of dir that the pipeline owner
// left: those a killed or crashed run of it left behind, which no live
// writer holds locked. A pipeline's runs never overlap (its lock, and the
// destination's claim across hosts), so none of its own files is in the
// middle of a commit; another pipeline's files are never touched, even
// once closed: between its writer closing a file and renaming it into
// place, the file is unlocked and still wanted. Files from before names
// carried their owner (.part-<digits>.tmp) are removed when unlocked. It
// returns how many it removed.
func RemoveStale(dir, owner string) int {
	removed := 0
	tag := ownerTag(owner)
	for _, pattern := range []string{".part-" + tag + "-*.tmp", ".manifest-" + tag + "-*.tmp", ".part-*.tmp", ".manifest-*.tmp"} {
		names, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, name := range names {
			if strings.Count(pattern, "-") == 1 && !legacyTemp(filepath.Base(name)) {
				continue // another pipeline's
			}
			fh, err := os.Open(name)
			if err != nil {
				continue
			}
			if filelock.TryLock(fh) == nil && os.Remove(name) == nil {
				removed++
			}
			fh.Close()
		}
	}
	return removed
}

// legacyTemp says whether name is a temporary file named before names
// carried their owner: .part-<digits>.tmp or .manifest-<digits>.tmp.
func legacyTemp(name string) bool {
	stem, ok := strings.CutSuffix(name, ".tmp")
	if !ok {
		return false
	}
	_, digits, ok := strings.Cut(stem, "-")
	if !ok || digits == "" {
		return false
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Commit makes a closed temporary file visible as name, with checkpoint.
func (f *Folder) Commit(tmpPath, name string, checkpoint []byte) error {
	if err := Sync(tmpPath); err != nil {
		return err
	}
	m := manifest{File: name, Temp: filepath.Base(tmpPath), Checkpoint: checkpoint, CommittedAt: time.Now().UTC()}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	mt, err := os.CreateTemp(f.dir, ".manifest-"+ownerTag(f.pipeline)+"-*.tmp")
	if err != nil {
		return err
	}
	filelock.TryLock(mt) // RemoveStale leaves it alone
	mt.Chmod(shared)
	defer os.Remove(mt.Name())
	if _, err := mt.Write(b); err != nil {
		mt.Close()
		return err
	}
	if err := mt.Sync(); err != nil {
		mt.Close()
		return err
	}
	mt.Close()
	if err := os.Rename(mt.Name(), f.manifestPath()); err != nil { // the commit point
		return err
	}
	if err := syncDir(f.dir); err != nil {
		return err
	}
	if err := os.Rename(tmpPath, filepath.Join(f.dir, name)); err != nil {
		return err
	}
	return syncDir(f.dir)
}

// Checkpoint returns the checkpoint of the pipeline's last commit and when.
func (f *Folder) Checkpoint() ([]byte, time.Time, error) {
	m, err := f.recover()
	if err != nil || m == nil {
		return nil, time.Time{}, err
	}
	return m.Checkpoint, m.CommittedAt, nil
}

// Sync fsyncs a file or folder by name.
func Sync(path string) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	return fh.Sync()
}

func syncDir(dir string) error { return Sync(dir) }

// Claim takes the lock file .pipehost-claim-<stream>-<pipeline>.lock in
// root, the folder that holds the stream's folder (not inside it: an
// overwrite swaps the stream's folder), and writes holder into it. It fails
// at once when another process holds it, with an error wrapping
// sinks.ErrClaimed (passed as claimed) that names the holder. The kernel
// releases the lock if the process dies; on a folder shared between hosts
// the file system must support flock, as NFSv4 does.
func Claim(root, stream, pipeline, holder string, claimed error) (func(), error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(root, ".pipehost-claim-"+url.PathEscape(stream)+"-"+url.PathEscape(pipeline)+".lock")
	release, heldBy, err := filelock.Hold(path, 0o644, holder)
	switch {
	case errors.Is(err, filelock.ErrSymlink):
		return nil, fmt.Errorf("claim file %s is a symbolic link: refusing to use it (remove it)", path)
	case errors.Is(err, filelock.ErrLocked):
		return nil, fmt.Errorf("%w: %s is held by %s (%s)", claimed, root, heldBy, path)
	case err != nil:
		return nil, err
	}
	return release, nil
}
