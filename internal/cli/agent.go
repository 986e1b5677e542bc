package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/arcasec/arca/internal/agent"
	"github.com/arcasec/arca/internal/agent/config"
)

var agentCommand = &command{
	path:     []string{"agent"},
	synopsis: "Run beside an application: log in, render secrets into files or its environment, keep them fresh",
	help: `Runs the agent with a Vault Agent configuration file: auto_auth logs in and writes the
token to its sinks, template stanzas render secrets into files (re-rendered when a lease is
replaced or a KV secret changes), exec runs the application with secrets in its environment,
and api_proxy listeners forward requests with the agent's token. See docs/agent.md.`,
	flags: []flagSpec{
		listFlagSpec("config", "the agent configuration file (HCL or JSON)"),
		boolFlag("exit-after-auth", false, "exit after the first login (and one render of the templates)"),
		flagSpec{name: "log-level", def: "", env: []string{"ARCA_LOG_LEVEL", "VAULT_LOG_LEVEL"}, usage: "log level: debug, info, warn, error"},
		strFlag("log-format", "", "log format: standard or json"),
		strFlag("log-file", "", "write logs to this file (appended) as well as to standard error"),
	},
	noArgs: true,
	run:    runAgent,
}

func runAgent(e *env) error {
	files := e.list("config")
	switch {
	case len(files) == 0:
		return usageError("arca agent needs -config=FILE")
	case len(files) > 1:
		return usageError("arca agent reads one -config file (%d given); put the stanzas in one file", len(files))
	}
	if fi, err := os.Stat(files[0]); err == nil && fi.IsDir() {
		return usageError("-config=%s is a directory; arca agent reads one file", files[0])
	}
	cfg, err := config.Load(files[0])
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("loading the agent configuration: %w", err)}
	}
	if e.flag("exit-after-auth") {
		cfg.ExitAfterAuth = true
	}
	// As with vault agent: -address, then $ARCA_ADDR/$VAULT_ADDR, then
	// the file's vault { address } (likewise the CA file and skip-verify).
	if addr := cmp.Or(e.address, os.Getenv("ARCA_ADDR"), os.Getenv("VAULT_ADDR")); addr != "" {
		cfg.Vault.Address = addr
	}
	if ca := cmp.Or(e.caCert, os.Getenv("ARCA_CACERT"), os.Getenv("VAULT_CACERT")); ca != "" {
		cfg.Vault.CACert = ca
	}
	if e.skip {
		cfg.Vault.TLSSkipVerify = true
	}
	for flagName, fromFile := range map[string]string{"log-level": cfg.LogLevel, "log-format": cfg.LogFormat, "log-file": cfg.LogFile} {
		if *e.strs[flagName] == "" {
			*e.strs[flagName] = fromFile
		}
	}
	logOut := stderr
	if path := e.str("log-file"); path != "" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
		if err != nil {
			return &exitError{code: 1, err: fmt.Errorf("opening -log-file: %w", err)}
		}
		defer f.Close()
		logOut = io.MultiWriter(stderr, f)
	}
	log, err := newLogger(logOut, e.str("log-level"), e.str("log-format"))
	if err != nil {
		return usageError("%v", err)
	}
	ctx := context.Background()
	if cfg.Exec == nil {
		// With exec, signals are the child's: the supervisor forwards them,
		// and the agent ends when the child does.
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
	}
	log.Info("arca agent starting", "server", cfg.Vault.Address)
	code, err := agent.Run(ctx, cfg, agent.Options{Logger: log, Stdin: os.Stdin, Stdout: stdout, Stderr: stderr})
	if err != nil {
		return &exitError{code: max(code, 1), err: err}
	}
	if code != 0 {
		return &exitError{code: code, err: fmt.Errorf("")}
	}
	return nil
}
