package cli

import (
	"fmt"
	"os"
)

func runFile(args []string) int {
	fmt.Fprintln(os.Stderr, "arca file: not built yet")
	return 2
}
