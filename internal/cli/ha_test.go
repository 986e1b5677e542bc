package cli

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/arcasec/arca/api"
	"github.com/arcasec/arca/internal/server"
	"github.com/arcasec/arca/internal/server/servertest"
	"github.com/arcasec/arca/internal/storage"
)

// TestStatusAndStepDownHA: arca status shows the HA mode and the active
// node as vault status does, and arca operator step-down hands over.
func TestStatusAndStepDownHA(t *testing.T) {
	store := storage.NewInmemHA()
	var addrs []string
	for i := 0; i < 2; i++ {
		_, addr := servertest.StartConfig(t, &server.Config{Storage: server.StorageConfig{Type: "inmem"}, StorageBackend: store,
			StepDownWait: 200 * time.Millisecond}, nil)
		addrs = append(addrs, addr)
	}
	ctx := context.Background()
	c0, err := api.NewClient(api.Config{Address: addrs[0]})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c0.Init(ctx, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		c, _ := api.NewClient(api.Config{Address: a})
		if _, err := c.Unseal(ctx, res.Keys[0], false); err != nil {
			t.Fatal(err)
		}
	}
	active := func() int {
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			for i, a := range addrs {
				if resp, err := http.Get(a + "/v1/sys/health"); err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						return i
					}
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatal("no active server")
		return -1
	}
	a := active()
	t.Setenv("HOME", t.TempDir())
	t.Setenv("ARCA_ADDR", "")
	t.Setenv("ARCA_TOKEN", "")
	t.Setenv("VAULT_FORMAT", "")
	t.Setenv("VAULT_TOKEN", res.RootToken)

	t.Setenv("VAULT_ADDR", addrs[1-a])
	out := mustRun(t, "status")
	for _, want := range []string{"HA Enabled", "true", "HA Mode", "standby", "Active Node Address", addrs[a]} {
		if !strings.Contains(out, want) {
			t.Fatalf("status of a standby lacks %q:\n%s", want, out)
		}
	}
	t.Setenv("VAULT_ADDR", addrs[a])
	if out := mustRun(t, "status"); !strings.Contains(out, "active") {
		t.Fatalf("status of the active server:\n%s", out)
	}
	if out := mustRun(t, "status", "-format=json"); !strings.Contains(out, `"is_self": true`) || !strings.Contains(out, `"sealed": false`) {
		t.Fatalf("status -format=json of the active server:\n%s", out)
	}
	mustRun(t, "operator", "step-down")
	if b := active(); b == a {
		t.Fatal("the server that stepped down is active again")
	}
}
