//go:build linux

package filelock

import (
	"errors"

	"golang.org/x/sys/unix"
)

// Exchange swaps the folders a and b at once (renameat2 RENAME_EXCHANGE);
// ErrNoExchange on a file system without it.
func Exchange(a, b string) error {
	err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) {
		return ErrNoExchange
	}
	return err
}
