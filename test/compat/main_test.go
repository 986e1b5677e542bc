package compat

import (
	"testing"

	"github.com/arcasec/arca/internal/server/servertest"
)

// TestMain stops the PostgreSQL cluster the storage-parameterised tests
// share (servertest.EachStorage).
func TestMain(m *testing.M) { servertest.Main(m) }
