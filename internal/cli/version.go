package cli

import "github.com/arcasec/arca/internal/version"

// Version is the version the CLI reports.
var Version = version.String()
