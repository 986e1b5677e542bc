// Package servertest starts real Arca servers in-process for tests: dev
// servers on a random loopback port, and uninitialised ones for seal tests.
package servertest

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/arcasec/arca/internal/seal"
	"github.com/arcasec/arca/internal/server"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// StartDev starts a dev server (in-memory, unsealed, KV v2 at secret/) and
// returns its address ("http://127.0.0.1:port") and root token. It stops
// when the test ends.
func StartDev(t testing.TB) (addr, rootToken string) {
	t.Helper()
	_, addr, rootToken = StartDevServer(t, nil)
	return addr, rootToken
}

// StartDevServer is StartDev that also returns the server, for tests that
// act on it directly (reopening audit devices as SIGHUP does). When log is
// not nil, the server writes JSON logs at debug level to it.
//
// Dev servers run on inmem storage, unless ARCA_TEST_STORAGE names another
// ("postgresql" or "bolt"): the test command runs the server-level suites a
// second time that way, so they hold on the HA backend too.
func StartDevServer(t testing.TB, log io.Writer) (srv *server.Server, addr, rootToken string) {
	t.Helper()
	return StartDevServerOn(t, DevStorage(t), log)
}

// DevStorage is the storage dev servers start on: inmem, or the backend
// ARCA_TEST_STORAGE names.
func DevStorage(t testing.TB) server.StorageConfig {
	t.Helper()
	switch kind := os.Getenv("ARCA_TEST_STORAGE"); kind {
	case "", "inmem":
		return server.StorageConfig{Type: "inmem"}
	case "postgresql":
		return PostgresStorage(t)
	case "bolt":
		return BoltStorage(t)
	default:
		t.Fatalf("servertest: ARCA_TEST_STORAGE=%q is not inmem, bolt or postgresql", kind)
		return server.StorageConfig{}
	}
}

// StartDevOn is StartDev on the given storage (see EachStorage).
func StartDevOn(t testing.TB, sc server.StorageConfig) (addr, rootToken string) {
	t.Helper()
	_, addr, rootToken = StartDevServerOn(t, sc, nil)
	return addr, rootToken
}

// StartDevServerOn is StartDevServer on the given storage.
func StartDevServerOn(t testing.TB, sc server.StorageConfig, log io.Writer) (srv *server.Server, addr, rootToken string) {
	t.Helper()
	return startDev(t, sc, "127.0.0.1:0", log)
}

// StartDevAt is StartDev listening on listen ("127.0.0.1:port"), for tests
// of clients started before their server.
func StartDevAt(t testing.TB, listen string) (addr, rootToken string) {
	t.Helper()
	_, addr, rootToken = startDev(t, DevStorage(t), listen, nil)
	return addr, rootToken
}

func startDev(t testing.TB, sc server.StorageConfig, listen string, log io.Writer) (srv *server.Server, addr, rootToken string) {
	t.Helper()
	logger := quietLogger()
	if log != nil {
		logger = slog.New(slog.NewJSONHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv, res, err := server.StartDev(context.Background(), server.DevOptions{ListenAddress: listen, Storage: &sc}, logger)
	if err != nil {
		t.Fatalf("starting dev server: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv, "http://" + res.Address, res.RootToken
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

// StartConfig starts a server from conf, with one listener on a random
// loopback port added when conf has none, and returns it and its address.
// When log is not nil, the server writes JSON logs at debug level to it.
// It stops when the test ends, if the test has not shut it down first.
func StartConfig(t testing.TB, conf *server.Config, log io.Writer) (srv *server.Server, addr string) {
	t.Helper()
	if len(conf.Listeners) == 0 {
		conf.Listeners = []server.ListenerConfig{{Type: "tcp", Address: "127.0.0.1:0", TLSDisable: true}}
	}
	logger := quietLogger()
	if log != nil {
		logger = slog.New(slog.NewJSONHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv, err := server.New(conf, logger)
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
	return srv, "http://" + addrs[0]
}

// InitUnseal initialises srv with a single key share and unseals it. It
// returns the root token and the share, to unseal the server again after
// a restart on the same storage.
func InitUnseal(t testing.TB, srv *server.Server) (rootToken string, key []byte) {
	t.Helper()
	ctx := context.Background()
	res, err := srv.Core.Init(ctx, seal.Config{Shares: 1, Threshold: 1})
	if err != nil {
		t.Fatalf("initialising: %v", err)
	}
	if err := srv.Core.Unseal(ctx, res.Shares[0]); err != nil {
		t.Fatalf("unsealing: %v", err)
	}
	return res.RootToken, res.Shares[0]
}
