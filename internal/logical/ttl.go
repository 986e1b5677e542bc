package logical

import (
	"fmt"
	"time"
)

// LeaseTerms are what decides the lifetime of a lease or a token.
type LeaseTerms struct {
	// Requested is what the client asked for (a ttl, or a renewal's
	// increment); 0 means nothing was asked.
	Requested time.Duration
	// Default is the backend's own default (a role's default_ttl); 0 means
	// the mount's default_lease_ttl.
	Default time.Duration
	// Max is the backend's own cap on the whole life (a role's max_ttl);
	// 0 means the mount's max_lease_ttl. It never raises the mount's cap.
	Max time.Duration
	// Period, for a periodic token, is the TTL every renewal grants; a
	// periodic lifetime is capped only by ExplicitMax.
	Period time.Duration
	// ExplicitMax is a hard cap on the whole life that nothing lifts.
	ExplicitMax time.Duration
	// Issued is when the lease or token began; the caps count from it.
	// The zero time means now.
	Issued time.Time
	// Now, when set, is the time to compute from instead of sys.Now().
	Now time.Time
}

// CalculateTTL is the one place a TTL is computed: for leases when they are
// created and renewed, and for tokens. The TTL is the requested one, else
// the backend's default, else the mount's; it is then cut so the whole life
// since Issued stays within the smallest of the backend's max, the mount's
// max_lease_ttl (which already falls back to the server's) and ExplicitMax.
// A warning says when the TTL was cut. The result is never negative: 0 means
// the maximum life is already spent.
func CalculateTTL(sys LeaseClock, t LeaseTerms) (ttl time.Duration, warnings []string) {
	now := t.Now
	if now.IsZero() {
		now = sys.Now()
	}
	issued := t.Issued
	if issued.IsZero() {
		issued = now
	}
	var limit time.Duration // 0: no cap
	if t.Period > 0 {
		ttl = t.Period
		if t.Requested > 0 && t.Requested < ttl {
			ttl = t.Requested
		}
		limit = t.ExplicitMax
	} else {
		switch {
		case t.Requested > 0:
			ttl = t.Requested
		case t.Default > 0:
			ttl = t.Default
		default:
			ttl = sys.DefaultLeaseTTL()
		}
		limit = sys.MaxLeaseTTL()
		if t.Max > 0 && t.Max < limit {
			limit = t.Max
		}
		if t.ExplicitMax > 0 && t.ExplicitMax < limit {
			limit = t.ExplicitMax
		}
	}
	if limit > 0 {
		if left := issued.Add(limit).Sub(now); ttl > left {
			if left < 0 {
				left = 0
			}
			if t.Requested > 0 {
				warnings = append(warnings, fmt.Sprintf("TTL of %q exceeded the effective max_ttl of %q; TTL value is capped accordingly", t.Requested.String(), left.Round(time.Second).String()))
			}
			ttl = left
		}
	}
	return ttl, warnings
}
