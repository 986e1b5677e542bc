package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/hcl/hcl/ast"

	"github.com/arcasec/arca/internal/hclsafe"
	"github.com/arcasec/arca/internal/storage"
)

// MigrateConfig is the file `arca operator migrate -config` reads, in
// Vault's shape: one storage_source and one storage_destination stanza,
// each written as a server's storage stanza is.
type MigrateConfig struct {
	Source      StorageConfig
	Destination StorageConfig
}

// LoadMigrateConfig reads a migration configuration file (HCL or JSON).
func LoadMigrateConfig(path string) (*MigrateConfig, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the migration configuration: %w", err)
	}
	conf, err := ParseMigrateConfig(string(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return conf, nil
}

// ParseMigrateConfig parses migration configuration text.
func ParseMigrateConfig(text string) (*MigrateConfig, error) {
	file, err := hclsafe.Parse(text)
	if err != nil {
		return nil, fmt.Errorf("parsing the migration configuration: %w", err)
	}
	root, ok := file.Node.(*ast.ObjectList)
	if !ok {
		return nil, errors.New("the migration configuration must be a set of blocks")
	}
	conf := &MigrateConfig{}
	for _, item := range root.Items {
		if len(item.Keys) == 0 {
			continue
		}
		var dst *StorageConfig
		switch key := keyName(item.Keys[0]); key {
		case "storage_source":
			dst = &conf.Source
		case "storage_destination":
			dst = &conf.Destination
		case "cluster_addr": // Vault's raft destinations need it; accepted and unused
			continue
		default:
			return nil, fmt.Errorf("unknown setting %q in a migration configuration (it takes storage_source and storage_destination)", key)
		}
		if dst.Type != "" {
			return nil, fmt.Errorf("exactly one %q block is allowed", keyName(item.Keys[0]))
		}
		if *dst, err = parseStorage(keyName(item.Keys[0]), item); err != nil {
			return nil, err
		}
	}
	for name, sc := range map[string]StorageConfig{"storage_source": conf.Source, "storage_destination": conf.Destination} {
		switch storageKind(sc.Type) {
		case "":
			return nil, fmt.Errorf("a migration needs one %q block", name)
		case "inmem":
			return nil, fmt.Errorf("%s: inmem storage lives only in one process's memory; a migration copies between bolt and postgresql", name)
		}
	}
	return conf, nil
}

// storageKind is the storage package's name for a stanza's type.
func storageKind(typ string) string {
	switch typ {
	case "file": // Vault's name for a local single-file store
		return "bolt"
	case "postgres":
		return "postgresql"
	}
	return typ
}

// OpenStorage opens the backend a storage stanza describes.
func OpenStorage(sc StorageConfig) (storage.Backend, error) {
	b, err := storage.New(storageKind(sc.Type), sc.Options)
	if err != nil {
		return nil, fmt.Errorf("opening %s storage: %w", sc.Type, err)
	}
	return b, nil
}

// checkNoMigration refuses a store that a migration is copying (or left
// locked when it halted), as Vault does.
func checkNoMigration(phys storage.Storage) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := storage.MigrationInProgress(ctx, phys)
	if err != nil {
		return fmt.Errorf("checking for a storage migration: %w", err)
	}
	if st != nil {
		return fmt.Errorf("a storage migration is in progress on this store (started %s): wait for `arca operator migrate` to finish, or if it was halted, clear its lock with `arca operator migrate -reset`", st.Start.Format(time.RFC3339))
	}
	return nil
}
