// Command pgcluster starts a throwaway PostgreSQL cluster for the server
// benchmark (bench/server/run.sh with STORAGE=postgresql), durable as a
// production database is (fsync on, synchronous_commit on), prints its
// connection URL on one line, and removes it when stopped (SIGINT/SIGTERM).
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/arcasec/arca/internal/testutil/pgtest"
)

func main() {
	c, err := pgtest.NewWith("fsync=on", "synchronous_commit=on", "max_connections=200", "shared_buffers=256MB")
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgcluster:", err)
		os.Exit(1)
	}
	fmt.Println(c.URL())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	if err := c.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "pgcluster:", err)
		os.Exit(1)
	}
}
