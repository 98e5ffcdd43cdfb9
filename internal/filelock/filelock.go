// Package filelock holds what the host needs of the operating system's file
// locks and renames, one implementation per system, so that everything
// above it builds wherever Go does:
//
//   - TryLock and Unlock: an exclusive advisory lock on an open file, taken
//     without waiting and released by the system when the process dies
//     (flock on Unix, LockFileEx on Windows);
//   - OpenNoFollow: open or create a file, refusing a symbolic link in its
//     place (O_NOFOLLOW on Unix; a check before opening on Windows, where
//     making a symbolic link needs privileges);
//   - Exchange: swap two folders at once (renameat2 RENAME_EXCHANGE on Linux,
//     renamex_np RENAME_SWAP on macOS); ErrNoExchange where the system or
//     file system has no such call, so the caller falls back to two renames;
//   - Umask: the process's file mode creation mask (0 where there is none).
package filelock

import (
	"errors"
	"os"
	"strings"
)

// ErrLocked is returned (wrapped) by TryLock when another process, or
// another open file of this one, holds the lock.
var ErrLocked = errors.New("the file is locked")

// ErrSymlink is returned (wrapped) by OpenNoFollow when the path is a
// symbolic link.
var ErrSymlink = errors.New("the path is a symbolic link")

// ErrNoExchange is returned by Exchange when the system or the file system
// cannot swap two folders at once.
var ErrNoExchange = errors.New("no atomic folder exchange here")

// Hold takes the lock file at path (created with perm if missing; a
// symbolic link there is refused with ErrSymlink, so a planted link cannot
// make the caller truncate what it points at) and writes holder into it. It
// fails at once when another process holds it, with ErrLocked and, as
// heldBy, what that holder wrote. release empties the file and lets the
// lock go; the system releases it if the process dies.
func Hold(path string, perm os.FileMode, holder string) (release func(), heldBy string, err error) {
	f, err := OpenNoFollow(path, os.O_CREATE|os.O_RDWR, perm)
	if err != nil {
		return nil, "", err
	}
	if err := TryLock(f); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		return nil, strings.TrimSpace(string(b)), err
	}
	f.Truncate(0)
	f.WriteAt([]byte(holder+"\n"), 0)
	return func() {
		f.Truncate(0)
		Unlock(f)
		f.Close()
	}, "", nil
}
