//go:build !unix

package main

import "os"

// peakRSS is not measured on this system: the benchmark runs on Linux.
func peakRSS(*os.ProcessState) int64 { return 0 }
