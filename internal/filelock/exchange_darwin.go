//go:build darwin

package filelock

import (
	"errors"

	"golang.org/x/sys/unix"
)

// Exchange swaps the folders a and b at once (renamex_np RENAME_SWAP, APFS
// and HFS+); ErrNoExchange on a file system without it.
func Exchange(a, b string) error {
	err := unix.RenamexNp(a, b, unix.RENAME_SWAP)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.ENOSYS) {
		return ErrNoExchange
	}
	return err
}
