package filelock

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestALockIsHeldUntilReleased(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	a, err := OpenNoFollow(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenNoFollow(path, os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := TryLock(a); err != nil {
		t.Fatal(err)
	}
	if err := TryLock(b); !errors.Is(err, ErrLocked) {
		t.Fatalf("a second lock: %v, want ErrLocked", err)
	}
	if err := Unlock(a); err != nil {
		t.Fatal(err)
	}
	if err := TryLock(b); err != nil {
		t.Fatalf("after the release: %v", err)
	}
}

func TestASymbolicLinkIsNotOpened(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	os.WriteFile(target, []byte("keep"), 0o600)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Skip("no symbolic links here:", err)
	}
	if _, err := OpenNoFollow(link, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600); !errors.Is(err, ErrSymlink) {
		t.Fatalf("%v, want ErrSymlink", err)
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Fatal("the link's target was truncated")
	}
}

func TestExchangeSwapsTwoFoldersOrSaysItCannot(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.Mkdir(a, 0o755)
	os.Mkdir(b, 0o755)
	os.WriteFile(filepath.Join(a, "from-a"), nil, 0o644)
	os.WriteFile(filepath.Join(b, "from-b"), nil, 0o644)
	err := Exchange(a, b)
	if errors.Is(err, ErrNoExchange) {
		t.Skip("no folder exchange on this system or file system")
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(a, "from-b")); err != nil {
		t.Fatal("a does not hold b's file after the exchange")
	}
	if _, err := os.Stat(filepath.Join(b, "from-a")); err != nil {
		t.Fatal("b does not hold a's file after the exchange")
	}
}
