// Command arca is Arca's single binary: server, agent, scanner, SOPS files and
// the Vault-compatible client CLI.
package main

import (
	"os"

	"github.com/arcasec/arca/internal/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:]))
}
