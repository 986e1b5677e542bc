package server

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// LockMemory locks every page the process has and will map into RAM, so
// keys and secrets in memory are never written to swap.
func LockMemory() error {
	return mlockError(unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE))
}

// mlockError turns mlockall's failure into advice: EPERM and ENOMEM mean
// the process may not lock (that much) memory.
func mlockError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOMEM) {
		return fmt.Errorf("locking memory failed (%w): give the process the CAP_IPC_LOCK capability "+
			"(for example: setcap cap_ipc_lock=+ep /path/to/arca), or set disable_mlock = true "+
			"in the configuration to run without locked memory, which lets secrets reach swap", err)
	}
	return fmt.Errorf("locking memory failed (%w); set disable_mlock = true to run without it", err)
}
