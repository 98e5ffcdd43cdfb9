// Command nuorder-plugin serves the NuOrder connector as a plugin of the
// pipeline host. It is started by bin/pipeline, not by hand.
package main

import (
	"pipehost/connector/nuorder"
	"pipehost/plugins"
)

func main() {
	logger := plugins.Logger("nuorder")
	plugins.Serve(nuorder.New(logger), plugins.WithLogger(logger))
}
