// Package sandbox gives the NuOrder connector its --sandbox: the fake
// NuOrder API on loopback with the demo catalog. It lives apart from the
// connector so that the production connector never imports its test fake;
// the plugin binary (and the benchmark's in-process host) inject it.
package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"pipehost/internal/atomicfile"
	"sync"

	"pipehost/connector/nuorder"
	"pipehost/connector/nuorder/fakeapi"
)

// MemoryFile is the file, in the folder Start is given, that holds what the
// sandbox was sent (companies created, shipments recorded, replenishments,
// orders created, statuses changed).
const MemoryFile = "nuorder-sandbox.json"

// Start starts the fake NuOrder API with the demo catalog and returns what
// the connector needs to read it: its URL, credentials, warehouses, and
// Close. When dir is not empty, the sandbox remembers what it is sent there
// (MemoryFile, written after each write it accepts) and starts from what it
// remembers, so a second push to the sandbox meets what the first left, as
// a second push to NuOrder would. It errors when no loopback port can be
// opened or the memory cannot be read.
func Start(dir string) (nuorder.SandboxEnv, error) {
	opts := fakeapi.Options{Credentials: fakeapi.SandboxCredentials, Catalog: fakeapi.SandboxCatalog}
	var srv *fakeapi.Server
	var saveErr error
	var mu sync.Mutex
	if dir != "" {
		path := filepath.Join(dir, MemoryFile)
		opts.Changed = func() {
			mu.Lock()
			defer mu.Unlock()
			if err := save(srv, dir, path); err != nil && saveErr == nil {
				saveErr = err
			}
		}
	}
	srv, err := fakeapi.Start(opts)
	if err != nil {
		return nuorder.SandboxEnv{}, err
	}
	if dir != "" {
		b, err := os.ReadFile(filepath.Join(dir, MemoryFile))
		if err == nil {
			err = srv.Restore(b)
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			srv.Close()
			return nuorder.SandboxEnv{}, fmt.Errorf("the sandbox's memory %s: %w (remove it to start the sandbox afresh)", filepath.Join(dir, MemoryFile), err)
		}
	}
	sc := fakeapi.SandboxCredentials
	env := nuorder.SandboxEnv{URL: srv.URL(),
		Credentials: nuorder.Credentials{ConsumerKey: sc.ConsumerKey, ConsumerSecret: sc.ConsumerSecret, Token: sc.Token, TokenSecret: sc.TokenSecret}}
	env.Close = func() error {
		err := srv.Close()
		mu.Lock()
		defer mu.Unlock()
		if saveErr != nil {
			return fmt.Errorf("saving the sandbox's memory: %w", saveErr)
		}
		return err
	}
	for _, w := range fakeapi.SandboxCatalog.Warehouses() {
		code, name := w.Code, w.DisplayName
		env.Warehouses = append(env.Warehouses, nuorder.WarehouseConfig{ID: w.ID, Code: &code, Name: &name})
	}
	return env, nil
}

// save writes the server's snapshot to path atomically (atomicfile),
// readable by its owner only, like the state beside it.
func save(srv *fakeapi.Server, dir, path string) error {
	b, err := srv.Snapshot()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return atomicfile.Write(path, b, 0o600)
}
