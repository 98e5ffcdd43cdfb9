//go:build unix && !linux && !darwin

package filelock

// Exchange: this system has no atomic folder exchange the host uses.
func Exchange(a, b string) error { return ErrNoExchange }
