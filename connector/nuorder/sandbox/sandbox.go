// Package sandbox gives the NuOrder connector its --sandbox: the fake
// NuOrder API on loopback with the demo catalog. It lives apart from the
// connector so that the production connector never imports its test fake;
// the plugin binary (and the benchmark's in-process host) inject it.
package sandbox

import (
	"pipehost/connector/nuorder"
	"pipehost/connector/nuorder/fakeapi"
)

// Start starts the fake NuOrder API with the demo catalog and returns what
// the connector needs to read it: its URL, credentials, warehouses, and
// Close. It errors when no loopback port can be opened.
func Start() (nuorder.SandboxEnv, error) {
	srv, err := fakeapi.Start(fakeapi.Options{Credentials: fakeapi.SandboxCredentials, Catalog: fakeapi.SandboxCatalog})
	if err != nil {
		return nuorder.SandboxEnv{}, err
	}
	sc := fakeapi.SandboxCredentials
	env := nuorder.SandboxEnv{URL: srv.URL(), Close: srv.Close,
		Credentials: nuorder.Credentials{ConsumerKey: sc.ConsumerKey, ConsumerSecret: sc.ConsumerSecret, Token: sc.Token, TokenSecret: sc.TokenSecret}}
	for _, w := range fakeapi.SandboxCatalog.Warehouses() {
		code, name := w.Code, w.DisplayName
		env.Warehouses = append(env.Warehouses, nuorder.WarehouseConfig{ID: w.ID, Code: &code, Name: &name})
	}
	return env, nil
}
