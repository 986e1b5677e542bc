package logical_test

import (
	"testing"
	"time"

	"github.com/arcasec/arca/internal/logical"
)

type mountView struct {
	def, max time.Duration
	now      time.Time
}

func (m mountView) DefaultLeaseTTL() time.Duration { return m.def }
func (m mountView) MaxLeaseTTL() time.Duration     { return m.max }
func (m mountView) Now() time.Time                 { return m.now }

func TestCalculateTTL(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	sys := mountView{def: time.Hour, max: 24 * time.Hour, now: now}
	for _, tc := range []struct {
		name  string
		terms logical.LeaseTerms
		want  time.Duration
		warn  bool
	}{
		{"mount default", logical.LeaseTerms{}, time.Hour, false},
		{"backend default", logical.LeaseTerms{Default: 2 * time.Hour}, 2 * time.Hour, false},
		{"requested wins over defaults", logical.LeaseTerms{Requested: 3 * time.Hour, Default: 2 * time.Hour}, 3 * time.Hour, false},
		{"requested capped by backend max", logical.LeaseTerms{Requested: 5 * time.Hour, Max: 4 * time.Hour}, 4 * time.Hour, true},
		{"backend max never lifts the mount max", logical.LeaseTerms{Requested: 48 * time.Hour, Max: 72 * time.Hour}, 24 * time.Hour, true},
		{"max counts from issue", logical.LeaseTerms{Requested: 2 * time.Hour, Max: 3 * time.Hour, Issued: now.Add(-2 * time.Hour)}, time.Hour, true},
		{"max spent", logical.LeaseTerms{Requested: time.Hour, Max: time.Hour, Issued: now.Add(-2 * time.Hour)}, 0, true},
		{"default beyond max is cut silently", logical.LeaseTerms{Default: 10 * time.Hour, Max: time.Hour}, time.Hour, false},
		{"explicit max", logical.LeaseTerms{Requested: 3 * time.Hour, ExplicitMax: 90 * time.Minute}, 90 * time.Minute, true},
		{"period ignores the mount max", logical.LeaseTerms{Period: 48 * time.Hour}, 48 * time.Hour, false},
		{"period capped by explicit max", logical.LeaseTerms{Period: 48 * time.Hour, ExplicitMax: 30 * time.Hour, Issued: now.Add(-10 * time.Hour)}, 20 * time.Hour, false},
	} {
		got, warnings := logical.CalculateTTL(sys, tc.terms)
		if got != tc.want || (len(warnings) > 0) != tc.warn {
			t.Errorf("%s: ttl %v warnings %q, want %v (warning: %v)", tc.name, got, warnings, tc.want, tc.warn)
		}
	}
}
