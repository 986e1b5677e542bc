package server

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMlockErrorAdvice checks a refused mlockall tells the user both ways
// out: the capability, or disable_mlock.
func TestMlockErrorAdvice(t *testing.T) {
	for _, errno := range []unix.Errno{unix.EPERM, unix.ENOMEM} {
		msg := mlockError(errno).Error()
		for _, want := range []string{"CAP_IPC_LOCK", "disable_mlock = true", errno.Error()} {
			if !strings.Contains(msg, want) {
				t.Errorf("%v: %q does not mention %q", errno, msg, want)
			}
		}
	}
	if mlockError(nil) != nil {
		t.Error("success reported as an error")
	}
}
