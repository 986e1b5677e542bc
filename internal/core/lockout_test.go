package core

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// A flood of failed logins, on another mount or of other names on the same
// mount, does not clear the failure count of a name being guessed at: the
// bound on kept counts is per mount, and the fewest failures go first.
func TestLockoutCountsSurviveAFlood(t *testing.T) {
	c, _, _ := newClockedCore(t)
	ctx := context.Background()
	ls := c.lockout
	ls.maxFailed = 50
	p := lockoutPolicy{threshold: 5, duration: time.Hour, counterReset: time.Hour}
	victim := lockKey{"auth_userpass_1", "alice"}
	for i := 0; i < 4; i++ {
		ls.fail(ctx, victim, p)
	}
	// Another mount's flood (AppRole's logins are cheap) leaves it alone.
	for i := 0; i < 500; i++ {
		ls.fail(ctx, lockKey{"auth_approle_2", fmt.Sprintf("role-%d", i)}, p)
	}
	// So does a flood of single failures on the same mount.
	for i := 0; i < 500; i++ {
		ls.fail(ctx, lockKey{victim.accessor, fmt.Sprintf("ghost-%d", i)}, p)
	}
	if ls.isLocked(ctx, victim, p) {
		t.Fatal("alice is locked after four failures")
	}
	ls.fail(ctx, victim, p)
	if !ls.isLocked(ctx, victim, p) {
		t.Fatal("alice's fifth failure did not lock her: her count was lost in the flood")
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for acc, n := range ls.perMount {
		if n > ls.maxFailed {
			t.Fatalf("mount %s keeps %d counts, more than the bound %d", acc, n, ls.maxFailed)
		}
		real := 0
		for k := range ls.failed {
			if k.accessor == acc {
				real++
			}
		}
		if real != n {
			t.Fatalf("mount %s: %d counts kept, %d counted", acc, real, n)
		}
	}
}
