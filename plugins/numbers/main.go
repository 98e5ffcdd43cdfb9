// Command numbers-plugin serves the numbers test connector as a plugin. It
// exists to show that the host carries any connector; see connector/numbers.
package main

import (
	"pipehost/connector/numbers"
	"pipehost/plugins"
)

func main() {
	plugins.Serve(&numbers.Connector{}, plugins.WithLogger(plugins.Logger("numbers")))
}
