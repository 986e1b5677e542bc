package cli

import (
	"fmt"
	"os"
)

func runScan(args []string) int {
	fmt.Fprintln(os.Stderr, "arca scan: not built yet")
	return 2
}
