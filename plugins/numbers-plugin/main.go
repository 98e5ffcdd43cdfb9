// Command numbers-plugin serves the numbers test connector as a plugin. It
// exists to show that the host carries any connector; see connector/numbers.
package main

import (
	"fmt"
	"os"

	"pipehost/connector/numbers"
	"pipehost/plugins"
)

func main() {
	if err := plugins.Serve(&numbers.Connector{}, plugins.WithLogger(plugins.Logger("numbers"))); err != nil {
		fmt.Fprintln(os.Stderr, "numbers-plugin:", err)
		os.Exit(1)
	}
}
