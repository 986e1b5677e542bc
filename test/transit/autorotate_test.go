package transit_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/logical/leasetest"
	"github.com/arcasec/arca/internal/server"
)

// rotations is a log handler that announces each scheduled rotation.
type rotations chan string

func (r rotations) Enabled(context.Context, slog.Level) bool { return true }
func (r rotations) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r rotations) WithGroup(string) slog.Handler            { return r }
func (r rotations) Handle(_ context.Context, rec slog.Record) error {
	if rec.Message == "transit: rotated key on schedule" {
		rec.Attrs(func(a slog.Attr) bool {
			if a.Key == "key" {
				r <- a.Value.String()
			}
			return true
		})
	}
	return nil
}

// A key with auto_rotate_period is rotated by the server itself once the
// period has passed on the server's clock.
func TestServerRotatesKeysOnSchedule(t *testing.T) {
	clock := leasetest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	rotated := make(rotations, 4)
	srv, res, err := server.StartDev(context.Background(), server.DevOptions{ListenAddress: "127.0.0.1:0", Clock: clock}, slog.New(rotated))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	conf := vault.DefaultConfig()
	conf.Address = "http://" + res.Address
	conf.MaxRetries = 0
	c, err := vault.NewClient(conf)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(res.RootToken)
	if err := c.Sys().Mount("transit", &vault.MountInput{Type: "transit"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("transit/keys/daily", map[string]any{"auto_rotate_period": "24h"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("transit/keys/manual", nil); err != nil {
		t.Fatal(err)
	}

	clock.Advance(24 * time.Hour)
	select {
	case name := <-rotated:
		if name != "daily" {
			t.Fatalf("rotated %q on schedule, want daily", name)
		}
	case <-time.After(20 * time.Second): // only keeps a broken test from hanging
		t.Fatal("the key was not rotated once its period had passed")
	}
	latest := func(name string) json.Number {
		s, err := c.Logical().Read("transit/keys/" + name)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := s.Data["latest_version"].(json.Number)
		return n
	}
	if latest("daily") != "2" || latest("manual") != "1" {
		t.Fatalf("latest versions: daily %s, manual %s; want 2 and 1", latest("daily"), latest("manual"))
	}
}
