// Package agent runs `arca agent`: it logs in with auto-auth, renders
// templates into files and the environment of a child process, keeps the
// secrets behind them fresh, and serves an API proxy that adds its token.
// It talks to the server only through package api; the parts live in
// subpackages (config, auth, template, watch, child, proxy) and this package
// wires them together.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/arcasec/arca/api"
	"github.com/arcasec/arca/internal/agent/auth"
	"github.com/arcasec/arca/internal/agent/child"
	"github.com/arcasec/arca/internal/agent/config"
	"github.com/arcasec/arca/internal/agent/proxy"
	"github.com/arcasec/arca/internal/agent/watch"
)

// Options are what the command line adds to a configuration.
type Options struct {
	Logger *slog.Logger
	// Stdin, Stdout and Stderr are the exec child's when the configuration
	// names no files for it.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Run runs the agent until ctx ends, the exec child exits (its exit code is
// returned), exit_after_auth is satisfied, or a fatal error (a template
// that cannot be parsed, a missing key with error_on_missing_key, retries
// exhausted with exit_on_retry_failure, a login error with exit_on_err).
func Run(ctx context.Context, cfg *config.Config, opts Options) (int, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &agent{cfg: cfg, opts: opts, log: log}
	return a.run(ctx)
}

type agent struct {
	cfg    *config.Config
	opts   Options
	log    *slog.Logger
	client *api.Client
}

func (a *agent) run(parent context.Context) (int, error) {
	cfg := a.cfg
	templates, envTemplates, err := parseTemplates(cfg)
	if err != nil {
		return 1, err
	}
	if cfg.PidFile != "" {
		// 0600, as Vault Agent writes it.
		if err := os.WriteFile(cfg.PidFile, []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
			return 1, fmt.Errorf("writing pid_file: %w", err)
		}
		defer os.Remove(cfg.PidFile)
	}
	if a.client, err = newClient(cfg); err != nil {
		return 1, err
	}

	// With exec, the stop signals are noted here and forwarded to the
	// child by its supervisor; before the child runs, they stop the agent.
	var stopSigs chan os.Signal
	if cfg.Exec != nil {
		stopSigs = stopSignals()
		defer signal.Stop(stopSigs)
	} else if !signal.Ignored(syscall.SIGHUP) {
		// A service manager's reload (SIGHUP) must not kill the agent,
		// whose configuration is read once.
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer func() { signal.Stop(hup); close(hup) }()
		go func() {
			for range hup {
				a.log.Warn("SIGHUP received: the agent reads its configuration once; restart it to apply a change")
			}
		}()
	}

	// The parts stop (cancel) before the agent waits for them (wg.Wait):
	// deferred calls run last first.
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	// fail ends the agent with err unless something ended it first.
	fail := func(err error) { cancel(err) }

	// A read refused with 403 makes auto-auth check its token (set below,
	// before any part runs): a token revoked on the server is replaced at
	// once, not at its next renewal.
	var checkToken func()
	w := watch.New(a.client, watch.Options{
		StaticInterval:   cfg.TemplateConfig.StaticSecretRenderInterval,
		Retries:          cfg.Vault.Retries,
		RenewalThreshold: cfg.TemplateConfig.LeaseRenewalThreshold,
		Logger:           a.log.With("part", "watch"),
		OnPermissionDenied: func() {
			if checkToken != nil {
				checkToken()
			}
		},
	})

	// First token: auto-auth's first login, or the token from the
	// environment when there is no auto_auth stanza.
	authed := make(chan struct{})
	if cfg.AutoAuth != nil {
		h, err := a.authHandler(cfg.AutoAuth, authed, w)
		if err != nil {
			return 1, err
		}
		checkToken = h.CheckToken
		wg.Go(func() {
			if err := h.Run(ctx); err != nil && ctx.Err() == nil {
				fail(fmt.Errorf("auto-auth: %w", err))
			}
		})
	} else {
		a.client.SetToken(api.DefaultConfig().Token)
		close(authed)
	}

	for _, l := range cfg.Listeners {
		if err := a.serveProxy(ctx, &wg, l, func() { cancel(nil) }); err != nil {
			return 1, err
		}
	}

	select {
	case <-authed:
	case <-ctx.Done():
		return a.ended(ctx)
	case sig := <-stopSigs:
		a.log.Info("stopped by a signal before the exec child started", "signal", sig.String())
		return 0, nil
	}

	renderOnce := cfg.ExitAfterAuth
	if len(templates) == 0 && len(envTemplates) == 0 && cfg.Exec == nil {
		if cfg.ExitAfterAuth {
			a.log.Info("authenticated; exit_after_auth is set, exiting")
			return 0, nil
		}
		<-ctx.Done()
		return a.ended(ctx)
	}

	wg.Go(func() {
		if err := w.Run(ctx, cfg.TemplateConfig.ExitOnRetryFailure); err != nil && ctx.Err() == nil {
			fail(err)
		}
	})

	r := &renderer{agent: a, watcher: w, templates: templates, envTemplates: envTemplates}
	if renderOnce {
		if err := r.renderUntilDone(ctx); err != nil {
			return 1, err
		}
		a.log.Info("templates rendered; exit_after_auth is set, exiting")
		return 0, nil
	}

	var envs chan []string
	childDone := make(chan childResult, 1)
	if cfg.Exec != nil {
		envs = make(chan []string, 1)
		execOpts, closeFiles, err := a.childOptions(cfg.Exec)
		if err != nil {
			return 1, err
		}
		defer closeFiles()
		r.envs = envs
		wg.Go(func() {
			code, err := child.Run(ctx, execOpts, envs)
			childDone <- childResult{code, err}
		})
	}
	wg.Go(func() {
		if err := r.loop(ctx, false); err != nil && ctx.Err() == nil {
			fail(err)
		}
	})

	select {
	case res := <-childDone:
		cancel(nil)
		if res.err != nil {
			return 1, fmt.Errorf("exec: %w", res.err)
		}
		if len(stopSigs) > 0 {
			// The agent was told to stop (SIGTERM, SIGINT) and forwarded
			// it: a clean shutdown, exit 0 as Vault Agent does, whatever
			// the child's code (143 for a child that does not catch TERM
			// would mark a systemd unit failed).
			a.log.Info("stopped by a signal; the exec child has exited", "code", res.code)
			return 0, nil
		}
		a.log.Info("the exec child exited; the agent exits with its code", "code", res.code)
		return res.code, nil
	case <-ctx.Done():
		if cfg.Exec != nil {
			// The child is being stopped; its code is the agent's.
			res := <-childDone
			if code, err := a.ended(ctx); err != nil {
				return code, err
			}
			return res.code, res.err
		}
		return a.ended(ctx)
	}
}

// stopSignals notes the stop signals (SIGINT, SIGTERM) the agent receives
// while it runs an exec child; the child supervisor forwards them. One the
// agent was started ignoring is left ignored.
func stopSignals() chan os.Signal {
	c := make(chan os.Signal, 2)
	for _, s := range []os.Signal{syscall.SIGINT, syscall.SIGTERM} {
		if !signal.Ignored(s) {
			signal.Notify(c, s)
		}
	}
	return c
}

type childResult struct {
	code int
	err  error
}

// ended is the result when ctx ended: 0 when the parent context was
// cancelled (a signal), the cause when a part failed.
func (a *agent) ended(ctx context.Context) (int, error) {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return 1, cause
	}
	return 0, nil
}

func newClient(cfg *config.Config) (*api.Client, error) {
	v := cfg.Vault
	c, err := api.NewClient(api.Config{
		Address:       v.Address,
		CACert:        v.CACert,
		CAPath:        v.CAPath,
		ClientCert:    v.ClientCert,
		ClientKey:     v.ClientKey,
		TLSServerName: v.TLSServerName,
		TLSSkipVerify: v.TLSSkipVerify,
		Timeout:       60 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("vault stanza: %w", err)
	}
	if tr, ok := c.HTTPClient().Transport.(*http.Transport); ok {
		n := cfg.TemplateConfig.MaxConnectionsPerHost
		if n <= 0 {
			n = 10
		}
		tr.MaxConnsPerHost = n
		tr.MaxIdleConnsPerHost = n
	}
	return c, nil
}

func (a *agent) authHandler(aa *config.AutoAuth, authed chan struct{}, w *watch.Watcher) (*auth.Handler, error) {
	if aa.Method == nil {
		return nil, errors.New("auto_auth: a method stanza is required")
	}
	m, err := auth.NewMethod(aa.Method)
	if err != nil {
		return nil, fmt.Errorf("auto_auth method %q: %w", aa.Method.Type, err)
	}
	var sinks []auth.Sink
	for _, s := range aa.Sinks {
		sink, err := auth.NewSink(s)
		if err != nil {
			return nil, fmt.Errorf("auto_auth sink %q: %w", s.Type, err)
		}
		sinks = append(sinks, sink)
	}
	var once sync.Once
	return &auth.Handler{
		Client:      a.client,
		Method:      m,
		Sinks:       sinks,
		MinBackoff:  aa.Method.MinBackoff,
		MaxBackoff:  aa.Method.MaxBackoff,
		ExitOnError: aa.Method.ExitOnError,
		Logger:      a.log.With("part", "auth"),
		OnToken: func(string) {
			first := false
			once.Do(func() { first = true; close(authed) })
			if !first {
				w.TokenChanged()
			}
		},
		// A wrapped login only feeds the sinks; exit_after_auth counts it.
		OnWrapped: func() { once.Do(func() { close(authed) }) },
	}, nil
}

// serveProxy starts the API proxy on one listener; it stops with ctx.
// quit stops the agent (POST /agent/v1/quit, when the listener enables it).
func (a *agent) serveProxy(ctx context.Context, wg *sync.WaitGroup, l *config.Listener, quit func()) error {
	ln, err := proxy.Listen(l)
	if err != nil {
		return fmt.Errorf("listener %q %s: %w", l.Type, l.Address, err)
	}
	mode := "false"
	if a.cfg.APIProxy != nil {
		mode = a.cfg.APIProxy.UseAutoAuthToken
	}
	opts := proxy.Options{Client: a.client, UseAutoAuthToken: mode,
		RequireRequestHeader: l.RequireRequestHeader, Logger: a.log.With("part", "proxy")}
	if l.EnableQuit {
		opts.Quit = quit
	}
	srv := &http.Server{
		Handler:           proxy.Handler(opts),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	a.log.Info("API proxy listening", "type", l.Type, "address", ln.Addr().String(), "use_auto_auth_token", mode)
	wg.Go(func() { srv.Serve(ln) })
	wg.Go(func() {
		<-ctx.Done()
		shutdown, done := context.WithTimeout(context.Background(), 5*time.Second)
		defer done()
		srv.Shutdown(shutdown)
	})
	return nil
}

// childOptions builds the exec child's options; closeFiles closes the
// output files it opened.
func (a *agent) childOptions(e *config.Exec) (child.Options, func(), error) {
	opts := child.Options{
		Argv:        e.Command,
		BaseEnv:     os.Environ(),
		Restart:     e.RestartOnSecretChanges != "never",
		KillTimeout: e.RestartKillTimeout,
		Stdin:       a.opts.Stdin,
		Stdout:      a.opts.Stdout,
		Stderr:      a.opts.Stderr,
	}
	if e.RestartStopSignal != 0 {
		opts.StopSignal = e.RestartStopSignal
	}
	var files []*os.File
	closeFiles := func() {
		for _, f := range files {
			f.Close()
		}
	}
	for _, out := range []struct {
		path string
		w    *io.Writer
	}{{e.ChildProcessStdout, &opts.Stdout}, {e.ChildProcessStderr, &opts.Stderr}} {
		if out.path == "" {
			continue
		}
		f, err := os.OpenFile(out.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
		if err != nil {
			closeFiles()
			return opts, nil, fmt.Errorf("exec: opening the child's output: %w", err)
		}
		files = append(files, f)
		*out.w = f
	}
	return opts, closeFiles, nil
}
