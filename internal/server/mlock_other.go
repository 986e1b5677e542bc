//go:build !linux

package server

import (
	"fmt"
	"runtime"
)

// LockMemory reports that memory locking is not supported here: Arca locks
// memory only on Linux.
func LockMemory() error {
	return fmt.Errorf("locking memory is not supported on %s: set disable_mlock = true in the configuration", runtime.GOOS)
}
