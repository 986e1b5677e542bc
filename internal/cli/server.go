package cli

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/arcasec/arca/internal/server"
)

func runServer(args []string) int {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	configPath := fs.String("config", "", "path to an HCL or JSON configuration file")
	dev := fs.Bool("dev", false, "start an in-memory, unsealed server for development")
	devRoot := fs.String("dev-root-token-id", "", "root token ID in dev mode (default: random)")
	devListen := fs.String("dev-listen-address", "127.0.0.1:8200", "address dev mode listens on")
	logLevel := fs.String("log-level", "", "log level: debug, info, warn, error")
	logFormat := fs.String("log-format", "", "log format: standard or json")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "Usage: arca server -dev | -config=server.hcl")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 1
	}
	if *devRoot == "" {
		*devRoot = os.Getenv("VAULT_DEV_ROOT_TOKEN_ID")
	}
	if !*dev && *configPath == "" {
		fmt.Fprintln(os.Stderr, "Error: arca server needs -dev or -config=FILE")
		return 1
	}

	var conf *server.Config
	if *configPath != "" {
		var err error
		if conf, err = server.LoadConfig(*configPath); err != nil {
			fmt.Fprintf(os.Stderr, "Error loading configuration: %v\n", err)
			return 1
		}
		if *logLevel == "" {
			*logLevel = conf.LogLevel
		}
		if *logFormat == "" {
			*logFormat = conf.LogFormat
		}
		// Dev mode keeps nothing worth protecting and does not lock, as in Vault.
		if !*dev && !conf.DisableMlock {
			if err := server.LockMemory(); err != nil {
				fmt.Fprintf(os.Stderr, "Error: %v\n", err)
				return 1
			}
		}
	}
	logger, err := newLogger(os.Stderr, *logLevel, *logFormat)
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var srv *server.Server
	if *dev {
		var res *server.DevResult
		srv, res, err = server.StartDev(ctx, server.DevOptions{ListenAddress: *devListen, RootTokenID: *devRoot}, logger)
		if err != nil {
			fmt.Fprintf(os.Stderr, "Error starting dev server: %v\n", err)
			return 1
		}
		printDevBanner(os.Stdout, res)
	} else {
		if srv, err = server.New(conf, logger); err != nil {
			fmt.Fprintf(os.Stderr, "Error: %v\n", err)
			return 1
		}
		addrs, err := srv.Start()
		if err != nil {
			fmt.Fprintf(os.Stderr, "Error: %v\n", err)
			return 1
		}
		advertised := ""
		if conf.APIAddr != "" {
			advertised = " (api_addr " + conf.APIAddr + ")"
		}
		if conf.PidFile != "" {
			if err := os.WriteFile(conf.PidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
				fmt.Fprintf(os.Stderr, "Error: writing pid_file: %v\n", err)
				srv.Shutdown(context.Background())
				return 1
			}
			defer os.Remove(conf.PidFile)
		}
		how := "it is sealed until unsealed with 'arca operator unseal'"
		if conf.Seal != nil && !conf.Seal.Disabled {
			how = "it unseals itself with its transit seal at " + conf.Seal.Address
		}
		fmt.Fprintf(os.Stdout, "==> Arca server started (%s storage) on %s%s; %s.\n",
			conf.Storage.Type, strings.Join(addrs, ", "), advertised, how)
	}
	// SIGHUP reopens audit files, so logrotate can move them away.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for done := false; !done; {
		select {
		case <-hup:
			if err := srv.Core.ReopenAudit(); err != nil {
				logger.Error("reopening audit devices after SIGHUP failed", "error", err)
			} else {
				logger.Info("reopened audit devices after SIGHUP")
			}
		case <-ctx.Done():
			done = true
		}
	}
	fmt.Fprintln(os.Stdout, "==> Arca is shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		fmt.Fprintf(os.Stderr, "Error during shutdown: %v\n", err)
		return 1
	}
	return 0
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	switch strings.ToLower(level) {
	case "", "info":
		lv = slog.LevelInfo
	case "debug", "trace":
		lv = slog.LevelDebug
	case "warn", "warning":
		lv = slog.LevelWarn
	case "error", "err":
		lv = slog.LevelError
	default:
		return nil, fmt.Errorf("unknown log level %q (debug, info, warn, error)", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "", "standard", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("unknown log format %q (standard or json)", format)
}

// printDevBanner tells the user what dev mode is and how to reach it. The
// "Unseal Key:" and "Root Token:" lines keep their exact form: scripts
// written for the vault CLI read them.
func printDevBanner(w io.Writer, res *server.DevResult) {
	addr := "http://" + res.Address
	fmt.Fprintf(w, `==> Arca %s is running in dev mode at %s (in-memory storage).

Dev mode is for trying Arca out and for tests. Everything lives in memory
and is gone when the process stops; the server is already initialized and
unsealed, with one unseal key, and KV version 2 is mounted at secret/.
Never keep real secrets in it.

Point the CLI and other clients at it with:

    $ export VAULT_ADDR='%s'

To seal and unseal it, or to log in again, use:

Unseal Key: %s
Root Token: %s

`, Version, addr, addr, base64.StdEncoding.EncodeToString(res.UnsealKey), res.RootToken)
}
