//go:build windows

package filelock

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/windows"
)

// TryLock takes an exclusive lock on f without waiting; ErrLocked when it
// is held. Windows releases it when the process dies.
func TryLock(f *os.File) error {
	ol := new(windows.Overlapped)
	err := windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) || errors.Is(err, windows.ERROR_IO_PENDING) {
		return fmt.Errorf("%w: %s", ErrLocked, f.Name())
	}
	return err
}

// Unlock releases a lock TryLock took.
func Unlock(f *os.File) error {
	return windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, new(windows.Overlapped))
}

// OpenNoFollow opens path with flag and perm unless it is a symbolic link
// (checked just before: Windows has no O_NOFOLLOW, and making a link there
// needs privileges).
func OpenNoFollow(path string, flag int, perm os.FileMode) (*os.File, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return nil, fmt.Errorf("%w: %s", ErrSymlink, path)
	}
	return os.OpenFile(path, flag, perm)
}

// Umask is 0: Windows has no file mode creation mask.
func Umask() os.FileMode { return 0 }

// Exchange cannot swap folders at once on Windows.
func Exchange(a, b string) error { return ErrNoExchange }
