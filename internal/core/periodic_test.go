package core

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/arcasec/arca/internal/logical"
	fw "github.com/arcasec/arca/internal/logical/framework"
	"github.com/arcasec/arca/internal/seal"
	"github.com/arcasec/arca/internal/storage"
)

// ticking is a backend with scheduled work: it counts its runs and
// checks it got its own storage.
type ticking struct {
	*fw.Backend
	own   logical.Storage
	runs  int
	wrong bool
}

func (b *ticking) Periodic(ctx context.Context, s logical.Storage) error {
	b.runs++
	b.wrong = b.wrong || s != b.own
	return nil
}

func TestPeriodicBackendsRun(t *testing.T) {
	var made []*ticking
	factory := func(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
		b := &ticking{Backend: &fw.Backend{}, own: conf.Storage}
		made = append(made, b)
		return b, nil
	}
	c, err := New(Config{
		Storage: storage.NewInmem(),
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Catalog: Catalog{Secrets: map[string]logical.Factory{"ticking": factory}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := c.Init(ctx, seal.Config{Shares: 1, Threshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Unseal(ctx, res.Shares[0]); err != nil {
		t.Fatal(err)
	}
	defer c.Seal(ctx)
	for _, path := range []string{"sys/mounts/one", "sys/mounts/two"} {
		if _, err := call(c, res.RootToken, logical.UpdateOperation, path, map[string]any{"type": "ticking"}); err != nil {
			t.Fatalf("mount %s: %v", path, err)
		}
	}
	c.mounts.runPeriodic(ctx)
	if len(made) != 2 {
		t.Fatalf("%d backends made, want 2", len(made))
	}
	for i, b := range made {
		if b.runs != 1 || b.wrong {
			t.Errorf("backend %d: %d runs (want 1), own storage: %v", i, b.runs, !b.wrong)
		}
	}
}
