package core

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arcasec/arca/internal/logical"
	fw "github.com/arcasec/arca/internal/logical/framework"
	"github.com/arcasec/arca/internal/logical/leasetest"
	"github.com/arcasec/arca/internal/seal"
	"github.com/arcasec/arca/internal/storage"
)

// periodicEngine is a factory for a backend whose only behaviour is its
// periodic function.
func periodicEngine(run func(ctx context.Context, req *logical.Request, own logical.Storage) error) logical.Factory {
	return func(_ context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
		b := &fw.Backend{PeriodicFunc: func(ctx context.Context, req *logical.Request) error {
			return run(ctx, req, conf.Storage)
		}}
		b.Setup(conf)
		return b, nil
	}
}

// rollbackCore returns an unsealed core on clock with the given engines
// mounted at the given paths (path: engine type), and its log.
func rollbackCore(t *testing.T, clock Clock, engines map[string]logical.Factory, mounts map[string]string) (*Core, *syncBuffer) {
	t.Helper()
	log := &syncBuffer{}
	c, err := New(Config{
		Storage: storage.NewInmem(),
		Logger:  slog.New(slog.NewTextHandler(log, nil)),
		Clock:   clock,
		Catalog: Catalog{Secrets: engines},
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
	t.Cleanup(func() { c.Seal(context.Background()) })
	for path, typ := range mounts {
		if _, err := call(c, res.RootToken, logical.UpdateOperation, "sys/mounts/"+path, map[string]any{"type": typ}); err != nil {
			t.Fatalf("mounting %s at %s: %v", typ, path, err)
		}
	}
	return c, log
}

// syncBuffer is a log that goroutines write to at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// receive waits for a value from ch; the deadline only keeps a broken test
// from hanging.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatalf("%s never happened", what)
		panic("unreachable")
	}
}

// Every mount's periodic function runs on the core's clock with the mount's
// own storage, and none runs once the core is sealed.
func TestRollbackRunsEachMountWhileUnsealed(t *testing.T) {
	type run struct {
		mount string
		own   bool
	}
	runs := make(chan run, 8)
	ticking := periodicEngine(func(_ context.Context, req *logical.Request, own logical.Storage) error {
		runs <- run{req.MountPoint, req.Storage == own}
		return nil
	})
	clock := leasetest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	c, _ := rollbackCore(t, clock, map[string]logical.Factory{"ticking": ticking}, map[string]string{"one": "ticking", "two": "ticking"})

	clock.Advance(rollbackInterval)
	seen := map[string]bool{}
	for range 2 {
		r := receive(t, runs, "a periodic run")
		if !r.own {
			t.Errorf("%s: the periodic function got another mount's storage", r.mount)
		}
		seen[r.mount] = true
	}
	if !seen["one/"] || !seen["two/"] {
		t.Fatalf("periodic functions ran for %v, want one/ and two/", seen)
	}

	c.Seal(context.Background())
	clock.Advance(rollbackInterval)
	select {
	case r := <-runs:
		t.Fatalf("%s: a periodic function ran after seal", r.mount)
	default:
	}
}

// Sealing cancels a periodic function that is running and waits for it, so
// the barrier is never sealed under it.
func TestSealWaitsForRunningPeriodicFunc(t *testing.T) {
	started, finished := make(chan struct{}, 1), make(chan error, 1)
	blocking := periodicEngine(func(ctx context.Context, req *logical.Request, _ logical.Storage) error {
		started <- struct{}{}
		<-ctx.Done()
		finished <- req.Storage.Put(context.Background(), &logical.StorageEntry{Key: "last-run", Value: []byte("cancelled")})
		return ctx.Err()
	})
	clock := leasetest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	c, _ := rollbackCore(t, clock, map[string]logical.Factory{"blocking": blocking}, map[string]string{"slow": "blocking"})

	clock.Advance(rollbackInterval)
	receive(t, started, "the periodic function's start")
	c.Seal(context.Background())
	select {
	case err := <-finished:
		if err != nil {
			t.Fatalf("the periodic function could not write to its storage while the core sealed: %v", err)
		}
	default:
		t.Fatal("the core sealed while a periodic function was still running")
	}
}

// A mount whose periodic function hangs, fails or panics holds up no other
// mount; a hung one is not started again while it runs, and a panic is
// logged without its value.
func TestRollbackOneMountHoldsUpNoOther(t *testing.T) {
	release := make(chan struct{})
	var stuckRuns, failRuns, panicRuns atomic.Int64
	steady := make(chan struct{}, 2)
	engines := map[string]logical.Factory{
		"stuck": periodicEngine(func(ctx context.Context, _ *logical.Request, _ logical.Storage) error {
			stuckRuns.Add(1)
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		}),
		"failing": periodicEngine(func(context.Context, *logical.Request, logical.Storage) error {
			failRuns.Add(1)
			return errors.New("the backing service is unreachable")
		}),
		"panicking": periodicEngine(func(context.Context, *logical.Request, logical.Storage) error {
			panicRuns.Add(1)
			panic("s3cr3t-value")
		}),
		"steady": periodicEngine(func(context.Context, *logical.Request, logical.Storage) error {
			steady <- struct{}{}
			return nil
		}),
	}
	mounts := map[string]string{"stuck": "stuck", "failing": "failing", "panicking": "panicking", "steady": "steady"}
	// The clock never moves, so only the rounds this test starts run.
	clock := leasetest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	c, log := rollbackCore(t, clock, engines, mounts)

	r := &rollbacks{core: c, busy: map[*view]bool{}}
	ctx := context.Background()
	r.startRound(ctx, c.mounts)
	receive(t, steady, "the first round of the steady mount")
	r.startRound(ctx, c.mounts)
	receive(t, steady, "the second round of the steady mount")
	close(release)
	r.running.Wait()

	if n := stuckRuns.Load(); n != 1 {
		t.Errorf("the stuck mount ran %d times, want 1 (not again while it was running)", n)
	}
	// Whether their first run was over when the second round started is
	// up to the scheduler; either way each ran.
	if failRuns.Load() == 0 || panicRuns.Load() == 0 {
		t.Errorf("failing ran %d times, panicking %d; want at least 1 each", failRuns.Load(), panicRuns.Load())
	}
	logged := log.String()
	if !strings.Contains(logged, "panicked") || !strings.Contains(logged, "path=panicking/") {
		t.Errorf("the panic was not logged with its mount:\n%s", logged)
	}
	if strings.Contains(logged, "s3cr3t-value") {
		t.Error("the log holds the panic's value")
	}
	if !strings.Contains(logged, "the backing service is unreachable") {
		t.Errorf("the failure was not logged:\n%s", logged)
	}

	// A panic or failure does not leave the mount marked busy.
	failed, panicked := failRuns.Load(), panicRuns.Load()
	r.startRound(ctx, c.mounts)
	receive(t, steady, "the third round of the steady mount")
	r.running.Wait()
	if failRuns.Load() != failed+1 || panicRuns.Load() != panicked+1 {
		t.Error("a mount that failed or panicked did not run again in the next round")
	}
}
