package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/arcasec/arca/internal/auth/approle"
	jwtauth "github.com/arcasec/arca/internal/auth/jwt"
	"github.com/arcasec/arca/internal/auth/userpass"
	"github.com/arcasec/arca/internal/core"
	"github.com/arcasec/arca/internal/engines/database"
	"github.com/arcasec/arca/internal/engines/kv"
	"github.com/arcasec/arca/internal/engines/transit"
	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/seal"
	sealtransit "github.com/arcasec/arca/internal/seal/transit"
	"github.com/arcasec/arca/internal/storage"
)

// Catalog is every secrets engine and auth method this build can mount.
// Adding an engine means adding it here and in its own folder, nothing else.
func Catalog() core.Catalog {
	return core.Catalog{
		Secrets: map[string]logical.Factory{
			"kv":       kv.Factory,
			"database": database.Factory,
			"transit":  transit.Factory,
		},
		Auth: map[string]logical.Factory{
			"jwt":      jwtauth.Factory,
			"oidc":     jwtauth.Factory,
			"userpass": userpass.Factory,
			"approle":  approle.Factory,
		},
	}
}

// Server is a running Arca server: a core and its listeners.
type Server struct {
	Core    *core.Core
	conf    *Config
	logger  *slog.Logger
	storage storage.Backend

	// autoseal is the transit seal, if configured; ctx ends the background
	// work tied to it (unsealing, token renewal) on Shutdown.
	autoseal *sealtransit.Seal
	ctx      context.Context
	cancel   context.CancelFunc

	mu        sync.Mutex
	shutDown  bool
	servers   []*http.Server
	listeners []net.Listener
}

// New builds a server from a configuration: storage, core (sealed) and
// handlers. Listeners open in Start.
func New(conf *Config, logger *slog.Logger) (*Server, error) {
	if logger == nil {
		logger = slog.Default()
	}
	kind := storageKind(conf.Storage.Type)
	phys := conf.StorageBackend
	if phys == nil {
		var err error
		if phys, err = OpenStorage(conf.Storage); err != nil {
			return nil, err
		}
	}
	if err := checkNoMigration(phys); err != nil {
		phys.Close()
		return nil, err
	}
	var err error
	var autoseal *sealtransit.Seal
	if conf.Seal != nil {
		if autoseal, err = sealtransit.New(*conf.Seal); err != nil {
			phys.Close()
			return nil, err
		}
	}
	catalog := Catalog()
	if conf.Catalog != nil {
		catalog = *conf.Catalog
	}
	cc := core.Config{
		Storage:         phys,
		StorageType:     kind,
		Catalog:         catalog,
		Clock:           conf.Clock,
		Logger:          logger,
		DefaultLeaseTTL: conf.DefaultLeaseTTL,
		MaxLeaseTTL:     conf.MaxLeaseTTL,
		ClusterName:     conf.ClusterName,
		APIAddr:         conf.APIAddr,
		ClusterAddr:     conf.ClusterAddr,
		StepDownWait:    conf.StepDownWait,
		Audit:           auditConfig(conf),
		UserLockout:     conf.UserLockout,
	}
	if autoseal != nil {
		cc.Seal, cc.SealDisabled = autoseal, autoseal.Disabled()
	}
	c, err := core.New(cc)
	if err != nil {
		phys.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{Core: c, conf: conf, logger: logger, storage: phys, autoseal: autoseal, ctx: ctx, cancel: cancel}, nil
}

// auditConfig is the configuration's audit stanzas and settings as the
// core takes them.
func auditConfig(conf *Config) core.AuditConfig {
	ac := core.AuditConfig{AllowAPICreation: conf.UnsafeAllowAPIAuditCreation, AllowPrefix: conf.AllowAuditLogPrefixing}
	for _, a := range conf.Audit {
		ac.Devices = append(ac.Devices, &core.AuditEntry{Path: a.Path, Type: a.Type, Description: a.Description, Options: a.Options, Local: a.Local})
	}
	return ac
}

// Start opens every listener and serves in the background. It returns the
// addresses actually bound (useful with port 0).
func (s *Server) Start() ([]string, error) {
	var addrs []string
	for _, lc := range s.conf.Listeners {
		ln, err := net.Listen("tcp", lc.Address)
		if err != nil {
			s.Shutdown(context.Background())
			return nil, fmt.Errorf("listening on %s: %w", lc.Address, err)
		}
		if !lc.TLSDisable {
			tlsConf, err := tlsConfig(lc)
			if err != nil {
				ln.Close()
				s.Shutdown(context.Background())
				return nil, err
			}
			ln = tls.NewListener(ln, tlsConf)
		}
		srv := &http.Server{
			Handler: NewHandler(s.Core, s.logger, HandlerOptions{MaxRequestSize: lc.MaxRequestSize, MaxRequestDuration: lc.MaxRequestDuration,
				JSON: lc.JSON, StandbyRedirect: s.conf.StandbyRedirect}),
			ReadTimeout:       lc.ReadTimeout,
			ReadHeaderTimeout: lc.ReadHeaderTimeout,
			IdleTimeout:       lc.IdleTimeout,
			WriteTimeout:      lc.WriteTimeout,
			ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
		}
		s.mu.Lock()
		s.servers = append(s.servers, srv)
		s.listeners = append(s.listeners, ln)
		s.mu.Unlock()
		addrs = append(addrs, ln.Addr().String())
		if len(addrs) == 1 && s.conf.APIAddr == "" && s.Core.HAEnabled() {
			s.advertiseListener(ln, lc)
		}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.logger.Error("listener stopped", "address", ln.Addr().String(), "error", err)
			}
		}()
	}
	if s.autoseal != nil && !s.autoseal.Disabled() {
		go s.autoUnseal()
		go s.autoseal.RenewToken(s.ctx, s.logger)
	}
	return addrs, nil
}

// advertiseListener makes the first listener's bound address the api_addr
// of an HA server configured without one, when that address is one other
// servers can reach (not a wildcard).
func (s *Server) advertiseListener(ln net.Listener, lc ListenerConfig) {
	tcp, ok := ln.Addr().(*net.TCPAddr)
	if !ok || tcp.IP.IsUnspecified() {
		s.logger.Warn("HA storage without api_addr: standbys cannot forward to this server; set api_addr")
		return
	}
	scheme := "https"
	if lc.TLSDisable {
		scheme = "http"
	}
	s.Core.SetAPIAddr(scheme + "://" + tcp.String())
}

// The auto-unseal retry delays: doubling from the first to the last.
const (
	unsealRetryFirst = time.Second
	unsealRetryMax   = 30 * time.Second
)

// autoUnseal unseals the core with its seal, retrying while the key
// service fails, until it succeeds, the store turns out not to be one that
// unseals itself, or the server shuts down. The server answers sealed
// meanwhile.
func (s *Server) autoUnseal() {
	wait := unsealRetryFirst
	for {
		err := s.Core.AutoUnseal(s.ctx)
		switch {
		case err == nil:
			s.logger.Info("unsealed by the transit seal")
			return
		case errors.Is(err, core.ErrNoAutoUnseal):
			s.logger.Info("not unsealing at start-up", "reason", err.Error())
			return
		case s.ctx.Err() != nil:
			return
		}
		s.logger.Warn("unsealing with the transit seal failed; retrying", "error", err, "retry_in", wait.String())
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, unsealRetryMax)
	}
}

func tlsConfig(lc ListenerConfig) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(lc.TLSCertFile, lc.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("listener %s: loading the TLS certificate: %w", lc.Address, err)
	}
	min := uint16(tls.VersionTLS12)
	switch lc.TLSMinVersion {
	case "", "tls12":
	case "tls13":
		min = tls.VersionTLS13
	default:
		return nil, fmt.Errorf("listener %s: tls_min_version %q is not supported (tls12 or tls13)", lc.Address, lc.TLSMinVersion)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: min}, nil
}

// Shutdown stops the listeners, seals the core and closes storage. Calls
// after the first do nothing.
func (s *Server) Shutdown(ctx context.Context) error {
	s.cancel()
	s.mu.Lock()
	if s.shutDown {
		s.mu.Unlock()
		return nil
	}
	s.shutDown = true
	servers := s.servers
	s.servers = nil
	s.mu.Unlock()
	for _, srv := range servers {
		srv.Shutdown(ctx)
	}
	s.Core.Seal(ctx)
	return s.storage.Close()
}

// DevOptions configure dev mode.
type DevOptions struct {
	ListenAddress string // default 127.0.0.1:8200
	RootTokenID   string // default: a random token
	// Catalog and Clock, when set, replace the build's catalog and the real
	// clock (tests).
	Catalog *core.Catalog
	Clock   core.Clock
	// Storage, when set, replaces in-memory storage (tests that run the
	// same suite on every backend).
	Storage *StorageConfig
}

// DevResult is what dev mode prints.
type DevResult struct {
	Address   string
	RootToken string
	UnsealKey []byte
}

// StartDev starts an in-memory server that is initialised with a single
// unseal key, unsealed, and has KV v2 mounted at secret/.
func StartDev(ctx context.Context, opts DevOptions, logger *slog.Logger) (*Server, *DevResult, error) {
	addr := opts.ListenAddress
	if addr == "" {
		addr = "127.0.0.1:8200"
	}
	sc := StorageConfig{Type: "inmem"}
	if opts.Storage != nil {
		sc = *opts.Storage
	}
	s, err := New(&Config{
		Storage: sc,
		Listeners: []ListenerConfig{{Type: "tcp", Address: addr, TLSDisable: true,
			ReadTimeout: DefaultReadTimeout, ReadHeaderTimeout: DefaultReadHeaderTimeout, IdleTimeout: DefaultIdleTimeout}},
		// A dev server is a throwaway on the developer's machine, run by the
		// person who would write the configuration; enabling a device
		// through the API is how dev workflows and tests audit.
		UnsafeAllowAPIAuditCreation: true,
		Catalog:                     opts.Catalog,
		Clock:                       opts.Clock,
	}, logger)
	if err != nil {
		return nil, nil, err
	}
	res, err := s.Core.Init(ctx, seal.Config{Shares: 1, Threshold: 1})
	if err != nil {
		return nil, nil, err
	}
	if err := s.Core.Unseal(ctx, res.Shares[0]); err != nil {
		return nil, nil, err
	}
	root := res.RootToken
	if opts.RootTokenID != "" {
		if root, err = s.Core.CreateRootToken(ctx, opts.RootTokenID); err != nil {
			return nil, nil, err
		}
		// Only the chosen root token exists, as in Vault's dev mode.
		if err := s.Core.RevokeToken(ctx, res.RootToken); err != nil {
			return nil, nil, err
		}
	}
	if err := s.Core.EnableSecretsEngine(ctx, "secret/", "kv", map[string]string{"version": "2"}, "key/value secret storage"); err != nil {
		return nil, nil, err
	}
	addrs, err := s.Start()
	if err != nil {
		return nil, nil, err
	}
	return s, &DevResult{Address: addrs[0], RootToken: root, UnsealKey: res.Shares[0]}, nil
}
