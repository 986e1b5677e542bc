package watch

import (
	"testing"
	"time"
)

func TestKVv2Path(t *testing.T) {
	for _, c := range []struct{ path, mount, segment, want string }{
		{"secret/app/db", "secret/", "data", "secret/data/app/db"},
		{"secret/data/app/db", "secret/", "data", "secret/data/app/db"},
		{"secret/metadata/app", "secret/", "data", "secret/metadata/app"},
		{"secret", "secret/", "data", "secret/data"},
		{"team/kv/app", "team/kv/", "data", "team/kv/data/app"},
		{"secret/app", "secret/", "metadata", "secret/metadata/app"},
		{"secret/metadata/app", "secret/", "metadata", "secret/metadata/app"},
		{"secret", "secret/", "metadata", "secret/metadata"},
		// data/ is a name like any other when listing.
		{"secret/data", "secret/", "metadata", "secret/metadata/data"},
	} {
		if got := kvV2Path(c.path, c.mount, c.segment); got != c.want {
			t.Errorf("kvV2Path(%q, %q, %q) = %q, want %q", c.path, c.mount, c.segment, got, c.want)
		}
	}
}

func TestSplitPath(t *testing.T) {
	p, q, err := splitPath(" /secret/app?version=2 ")
	if err != nil || p != "secret/app" || q.Get("version") != "2" {
		t.Fatalf("splitPath = %q %v %v", p, q, err)
	}
	for _, bad := range []string{"", "/", "?version=1", "secret/app?%zz"} {
		if _, _, err := splitPath(bad); err == nil {
			t.Errorf("splitPath(%q) accepted", bad)
		}
	}
}

// The backoff doubles from about 250ms and stays about a minute at most.
func TestBackoffBounds(t *testing.T) {
	for n := 1; n <= 40; n++ {
		want := backoffBase << min(n-1, 10)
		want = min(want, backoffMax)
		d := backoff(n)
		if d < want*3/4 || d > want*5/4 {
			t.Fatalf("backoff(%d) = %v, want within 25%% of %v", n, d, want)
		}
	}
}

// Renewing at 2/3 plus a third of the grace always leaves more than the
// grace before a fresh lease ends, so a fresh lease is renewed, not
// refetched.
func TestFirstRenewalLeavesMoreThanGrace(t *testing.T) {
	for _, d := range []time.Duration{time.Second, 2 * time.Second, time.Hour} {
		for range 100 {
			g := grace(d, d)
			if g < d/10 || g >= d/5 {
				t.Fatalf("grace(%v) = %v, want 10-20%%", d, g)
			}
			if s := renewAfter(d, g); d-s <= g {
				t.Fatalf("lease %v: renewing after %v leaves %v, not more than the grace %v", d, s, d-s, g)
			}
		}
	}
}
