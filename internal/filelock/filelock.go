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

import "errors"

// ErrLocked is returned (wrapped) by TryLock when another process, or
// another open file of this one, holds the lock.
var ErrLocked = errors.New("the file is locked")

// ErrSymlink is returned (wrapped) by OpenNoFollow when the path is a
// symbolic link.
var ErrSymlink = errors.New("the path is a symbolic link")

// ErrNoExchange is returned by Exchange when the system or the file system
// cannot swap two folders at once.
var ErrNoExchange = errors.New("no atomic folder exchange here")
