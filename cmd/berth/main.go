// Command berth is the berth server and CLI.
package main

import (
	"os"

	"github.com/berthproject/berth/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
