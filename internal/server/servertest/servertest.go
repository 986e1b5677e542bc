// Package servertest starts real Arca servers in-process for tests: dev
// servers on a random loopback port, and uninitialised ones for seal tests.
package servertest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/arcasec/arca/internal/server"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// StartDev starts a dev server (in-memory, unsealed, KV v2 at secret/) and
// returns its address ("http://127.0.0.1:port") and root token. It stops
// when the test ends.
func StartDev(t testing.TB) (addr, rootToken string) {
	t.Helper()
	srv, res, err := server.StartDev(context.Background(), server.DevOptions{ListenAddress: "127.0.0.1:0"}, quietLogger())
	if err != nil {
		t.Fatalf("starting dev server: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return "http://" + res.Address, res.RootToken
}

// StartSealed starts an uninitialised server on in-memory storage and
// returns its address.
func StartSealed(t testing.TB) (addr string) {
	t.Helper()
	return Start(t, server.StorageConfig{Type: "inmem"})
}

// Start starts a server on the given storage, uninitialised or sealed as
// the storage leaves it, and returns its address.
func Start(t testing.TB, sc server.StorageConfig) (addr string) {
	t.Helper()
	srv, err := server.New(&server.Config{
		Storage:   sc,
		Listeners: []server.ListenerConfig{{Type: "tcp", Address: "127.0.0.1:0", TLSDisable: true}},
	}, quietLogger())
	if err != nil {
		t.Fatalf("creating server: %v", err)
	}
	addrs, err := srv.Start()
	if err != nil {
		t.Fatalf("starting server: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return "http://" + addrs[0]
}
