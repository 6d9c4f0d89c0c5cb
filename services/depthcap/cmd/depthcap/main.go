// Command depthcap runs the whole pipeline in one process (run, demo) and
// hosts the tools (import, verify, book, tail, healthcheck).
package main

import (
	"os"

	"github.com/depthcap/depthcap/services/depthcap/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
