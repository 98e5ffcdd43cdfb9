// Command nuorder-plugin serves the NuOrder connector as a plugin of the
// pipeline host. It is started by bin/pipeline, not by hand, except for
//
//	nuorder-plugin fake-api [--addr 127.0.0.1:8089] [--products N] [--companies N] [--orders N] [--seed S] [--prerender DIR]
//
// which serves the fake NuOrder API (the one --sandbox uses) on loopback
// until interrupted, printing its URL and credentials, for trying pipelines
// against any catalog size.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"pipehost/connector/nuorder"
	"pipehost/connector/nuorder/fakeapi"
	"pipehost/connector/nuorder/sandbox"
	"pipehost/plugins"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "fake-api" {
		os.Exit(fakeAPI(os.Args[2:]))
	}
	// The plugin's live heap is small (a few batches, the id sets) while it
	// allocates its whole input in passing: collecting at 3x the live heap
	// instead of 2x spends less CPU on GC, and the soft limit makes the
	// collector work harder before the plugin passes 128 MiB. The plugin
	// gets a clean environment, so GOGC is never set.
	debug.SetGCPercent(200)
	debug.SetMemoryLimit(128 << 20)
	logger := plugins.Logger("nuorder")
	if err := plugins.Serve(nuorder.New(logger, sandbox.Start), plugins.WithLogger(logger)); err != nil {
		fmt.Fprintln(os.Stderr, "nuorder-plugin:", err)
		os.Exit(1)
	}
}

func fakeAPI(args []string) int {
	fs := flag.NewFlagSet("fake-api", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8089", "loopback address to listen on")
	cat := fakeapi.SandboxCatalog
	fs.IntVar(&cat.Products, "products", cat.Products, "products in the catalog")
	fs.IntVar(&cat.Companies, "companies", cat.Companies, "companies in the catalog")
	fs.IntVar(&cat.Orders, "orders", cat.Orders, "orders in the catalog (any number: documents are generated as they are served)")
	fs.Uint64Var(&cat.Seed, "seed", cat.Seed, "seed of the generated documents")
	prerender := fs.String("prerender", "", "folder to render the order listings into once (kept for the next start with the same seed and size), served as files while no order changes: for benchmarks")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	srv, err := fakeapi.Start(fakeapi.Options{Credentials: fakeapi.SandboxCredentials, Catalog: cat, Addr: *addr, Prerender: *prerender})
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake-api:", err)
		return 1
	}
	if *prerender != "" {
		files, err := srv.PrerenderListings()
		if err != nil {
			fmt.Fprintln(os.Stderr, "fake-api: rendering the order listings:", err)
			return 1
		}
		for _, st := range fakeapi.OrderListingStatuses() {
			fmt.Printf("listing %s %s\n", st, files[st])
		}
	}
	c := fakeapi.SandboxCredentials
	fmt.Printf("fake NuOrder API on %s (%d products, %d companies, %d orders)\n", srv.URL(), cat.Products, cat.Companies, cat.Orders)
	fmt.Printf("export NUORDER_BASE_URL=%s NUORDER_CONSUMER_KEY=%s NUORDER_CONSUMER_SECRET=%s NUORDER_TOKEN=%s NUORDER_TOKEN_SECRET=%s\n",
		srv.URL(), c.ConsumerKey, c.ConsumerSecret, c.Token, c.TokenSecret)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	srv.Close()
	return 0
}
