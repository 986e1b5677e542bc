package cli

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/arcasec/arca/internal/server"
	"github.com/arcasec/arca/internal/storage"
)

// operatorMigrate is `arca operator migrate`: copy a store, offline, from
// one storage backend to another (vault operator migrate). It works on the
// stored bytes, so nothing is decrypted and no unseal key is needed.
func operatorMigrate(args []string) int {
	fs := flag.NewFlagSet("operator migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "path to the migration configuration: storage_source and storage_destination stanzas")
	start := fs.String("start", "", "copy only keys at or after this one (resume a halted migration)")
	reset := fs.Bool("reset", false, "remove the migration lock a halted migration left on the source, and copy nothing")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: arca operator migrate -config=migrate.hcl [-start=<key>] [-reset]")
		fs.PrintDefaults()
	}
	return runCommand(func() error {
		if err := fs.Parse(args); err != nil {
			return &exitError{code: 1, err: err}
		}
		if fs.NArg() > 0 {
			return usageError("operator migrate takes no arguments")
		}
		if *configPath == "" {
			*configPath = os.Getenv("ARCA_MIGRATE_CONFIG_PATH")
		}
		if *configPath == "" {
			return usageError("operator migrate needs -config=FILE with storage_source and storage_destination stanzas")
		}
		conf, err := server.LoadMigrateConfig(*configPath)
		if err != nil {
			return fmt.Errorf("Error loading the migration configuration: %w", err)
		}
		ctx := background()
		from, err := server.OpenStorage(conf.Source)
		if err != nil {
			return fmt.Errorf("Error opening storage_source: %w", err)
		}
		defer from.Close()
		if *reset {
			if err := storage.ResetMigrationLock(ctx, from); err != nil {
				return fmt.Errorf("Error resetting the migration lock: %w", err)
			}
			fmt.Fprintln(stdout, "Success! Migration lock reset (if it was set).")
			return nil
		}
		to, err := server.OpenStorage(conf.Destination)
		if err != nil {
			return fmt.Errorf("Error opening storage_destination: %w", err)
		}
		defer to.Close()
		res, err := storage.Migrate(ctx, from, to, storage.MigrateOptions{Start: *start})
		if err != nil {
			if errors.Is(err, storage.ErrDestinationNotEmpty) {
				return &exitError{code: 2, err: fmt.Errorf("Error migrating: %w", err)}
			}
			return fmt.Errorf("Error migrating (copied %d keys; rerun with -start at the key named above to resume): %w", res.Keys, err)
		}
		fmt.Fprintf(stdout, "Success! Copied %d keys (%d bytes) from %s to %s.\n", res.Keys, res.Bytes, conf.Source.Type, conf.Destination.Type)
		return nil
	})
}
