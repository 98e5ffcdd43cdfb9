//go:build !linux

package plugins

// removeOwnSockets does nothing here: a killed host's plugin may leave its
// socket file in the temporary folder.
func removeOwnSockets() {}
