//go:build linux

package plugins

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
)

// removeOwnSockets removes the Unix socket files this process listens on
// in the temporary folder (go-plugin's plugin*: its listener's Close would
// remove it, but a plugin whose host was killed exits without closing).
// Linux only: it reads /proc.
func removeOwnSockets() {
	inodes := map[string]bool{}
	fds, _ := os.ReadDir("/proc/self/fd")
	for _, fd := range fds {
		if link, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	f, err := os.Open("/proc/net/unix")
	if err != nil {
		return
	}
	defer f.Close()
	tmp := filepath.Clean(os.TempDir())
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 || !inodes[fields[6]] {
			continue
		}
		path := fields[7]
		if filepath.Dir(path) == tmp && strings.HasPrefix(filepath.Base(path), "plugin") {
			os.Remove(path)
		}
	}
}
