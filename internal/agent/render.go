package agent

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"slices"
	"strconv"
	"time"

	"github.com/arcasec/arca/api"
	"github.com/arcasec/arca/internal/agent/config"
	"github.com/arcasec/arca/internal/agent/template"
	"github.com/arcasec/arca/internal/agent/watch"
)

// fileTemplate is a template {} stanza, parsed.
type fileTemplate struct {
	cfg  *config.Template
	name string
	t    *template.Template
	// rendered: the template has rendered once; an error of the template
	// itself (a missing key) no longer stops the agent, see templateFailed.
	rendered bool
}

// envTemplate is an env_template stanza, parsed.
type envTemplate struct {
	name     string // the variable
	t        *template.Template
	rendered bool // as fileTemplate.rendered
}

// parseTemplates parses every template up front, so a syntax error stops
// the agent at start-up naming the file and line.
func parseTemplates(cfg *config.Config) ([]*fileTemplate, []*envTemplate, error) {
	var files []*fileTemplate
	for i, tc := range cfg.Templates {
		name := tc.Source
		if name == "" {
			name = fmt.Sprintf("template %d (%s)", i+1, tc.Destination)
		}
		t, err := parseOne(name, tc.Source, tc.Contents, template.Options{
			LeftDelim: tc.LeftDelim, RightDelim: tc.RightDelim, ErrorOnMissingKey: tc.ErrorOnMissingKey,
		})
		if err != nil {
			return nil, nil, err
		}
		files = append(files, &fileTemplate{cfg: tc, name: name, t: t})
	}
	var envs []*envTemplate
	for _, ec := range cfg.EnvTemplates {
		name := ec.Source
		if name == "" {
			name = "env_template " + ec.Name
		}
		t, err := parseOne(name, ec.Source, ec.Contents, template.Options{
			LeftDelim: ec.LeftDelim, RightDelim: ec.RightDelim, ErrorOnMissingKey: ec.ErrorOnMissingKey,
		})
		if err != nil {
			return nil, nil, err
		}
		envs = append(envs, &envTemplate{name: ec.Name, t: t})
	}
	return files, envs, nil
}

func parseOne(name, source, contents string, opts template.Options) (*template.Template, error) {
	if source != "" {
		b, err := os.ReadFile(source)
		if err != nil {
			return nil, fmt.Errorf("reading template: %w", err)
		}
		contents = string(b)
	}
	return template.Parse(name, contents, opts)
}

// renderer renders the templates whenever the watcher reports a change.
type renderer struct {
	*agent
	watcher      *watch.Watcher
	templates    []*fileTemplate
	envTemplates []*envTemplate
	// envs receives the exec child's environment each time it changes;
	// nil without exec.
	envs    chan []string
	lastEnv []string
	envSent bool
}

// fetchTracker remembers whether a render failed for want of a secret (the
// server unreachable, a path not there yet: retried) rather than because
// of the template itself (a missing key: fatal).
type fetchTracker struct {
	src template.Source
	err error
}

func (f *fetchTracker) Secret(path string, data map[string]any) (*api.Secret, error) {
	s, err := f.src.Secret(path, data)
	if err != nil {
		f.err = err
	}
	return s, err
}

func (f *fetchTracker) List(path string) ([]string, error) {
	keys, err := f.src.List(path)
	if err != nil {
		f.err = err
	}
	return keys, err
}

// execute renders t; retry reports a failure to fetch, err any failure.
func (r *renderer) execute(t *template.Template) (out []byte, retry bool, err error) {
	src := &fetchTracker{src: r.watcher}
	out, err = t.Execute(src)
	return out, err != nil && src.err != nil, err
}

// render renders every template once. complete is false when some
// template could not get its secrets (its file is left as it was); err is
// a fatal template error.
func (r *renderer) render(ctx context.Context) (complete bool, err error) {
	complete = true
	r.watcher.BeginRender()
	defer func() {
		if complete && err == nil {
			r.watcher.Prune()
		}
	}()
	for _, ft := range r.templates {
		out, retry, err := r.execute(ft.t)
		if err != nil {
			if !retry {
				// A template error stops the agent at start-up; after a
				// first render (a key removed since), or with error_fatal
				// = false, the old file stays and the render is retried.
				if !ft.rendered && ft.cfg.ErrorFatal {
					return false, fmt.Errorf("rendering %s: %w", ft.name, err)
				}
				r.templateFailed(ft.name, err)
				complete = false
				continue
			}
			r.log.Warn("cannot render the template yet; keeping the previous file and retrying", "template", ft.name, "error", err)
			complete = false
			continue
		}
		changed, err := template.WriteFile(ft.cfg.Destination, out, r.perm(ft.cfg), ft.cfg.Backup, ft.cfg.CreateDestDirs)
		if err != nil {
			r.log.Error("cannot write the rendered template", "template", ft.name, "destination", ft.cfg.Destination, "error", err)
			complete = false
			continue
		}
		ft.rendered = true
		if changed {
			if err := chown(ft.cfg); err != nil {
				r.log.Error("cannot give the rendered file its owner", "template", ft.name, "error", err)
			}
			r.log.Info("rendered", "template", ft.name, "destination", ft.cfg.Destination)
			r.runCommand(ctx, ft)
		}
	}
	if r.envs == nil {
		return complete, nil
	}
	env := make([]string, 0, len(r.envTemplates))
	for _, et := range r.envTemplates {
		out, retry, err := r.execute(et.t)
		if err != nil {
			if !retry {
				if !et.rendered {
					return false, fmt.Errorf("rendering env_template %s: %w", et.name, err)
				}
				r.templateFailed("env_template "+et.name, err)
				return false, nil
			}
			r.log.Warn("cannot render env_template yet; retrying", "name", et.name, "error", err)
			return false, nil
		}
		et.rendered = true
		env = append(env, et.name+"="+string(out))
	}
	slices.Sort(env)
	if !r.envSent || !slices.Equal(env, r.lastEnv) {
		// Replace an environment the child has not taken yet.
		select {
		case <-r.envs:
		default:
		}
		r.envs <- env
		r.lastEnv, r.envSent = env, true
	}
	return complete, nil
}

// templateFailed logs a template's own error (a missing key with
// error_on_missing_key) once it has rendered before. At start-up such an
// error stops the agent; later (a key removed from a KV secret) the agent
// goes on as Vault Agent does: the previous file (or the exec child's
// environment) stays, the error is logged and the render retried, and
// exit_on_retry_failure ends the agent.
func (r *renderer) templateFailed(name string, err error) {
	r.log.Error("cannot render the template; keeping the previous output and retrying", "template", name, "error", err)
}

// perm is the destination's mode: perms when given, else the existing
// file's, else 0644.
func (r *renderer) perm(tc *config.Template) os.FileMode {
	if tc.PermsSet {
		return tc.Perms
	}
	if fi, err := os.Stat(tc.Destination); err == nil {
		return fi.Mode().Perm()
	}
	return 0o644
}

// runCommand runs a template's command after its file changed.
func (r *renderer) runCommand(ctx context.Context, ft *fileTemplate) {
	argv := ft.cfg.Command
	if len(argv) == 0 {
		return
	}
	if ft.cfg.CommandShell {
		argv = []string{"/bin/sh", "-c", argv[0]}
	}
	timeout := ft.cfg.CommandTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = r.opts.Stdout, r.opts.Stderr
	if err := cmd.Run(); err != nil {
		r.log.Error("the template's command failed", "template", ft.name, "error", err)
		return
	}
	r.log.Info("ran the template's command", "template", ft.name)
}

// loop renders now and again on every change the watcher reports, retrying
// with backoff while secrets cannot be fetched. With once it returns after
// the first complete render.
func (r *renderer) loop(ctx context.Context, once bool) error {
	attempts := 0
	for {
		complete, err := r.render(ctx)
		if err != nil {
			return err
		}
		var retry <-chan time.Time
		if complete {
			attempts = 0
			if once {
				return nil
			}
		} else {
			attempts++
			if r.cfg.TemplateConfig.ExitOnRetryFailure {
				return fmt.Errorf("templates could not be rendered and exit_on_retry_failure is set")
			}
			retry = time.After(retryDelay(attempts))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.watcher.Changed():
			r.quiesce(ctx)
		case <-retry:
		}
	}
}

// quiesce waits, after a change, until no further change came for the
// templates' wait { min } (the largest asked), but no longer than their
// wait { max } in all, so a burst of changes renders once.
func (r *renderer) quiesce(ctx context.Context) {
	var quiet, limit time.Duration
	for _, ft := range r.templates {
		quiet, limit = max(quiet, ft.cfg.WaitMin), max(limit, ft.cfg.WaitMax)
	}
	if quiet <= 0 {
		return
	}
	deadline := time.After(max(limit, quiet))
	for {
		select {
		case <-ctx.Done():
			return
		case <-deadline:
			return
		case <-time.After(quiet):
			return
		case <-r.watcher.Changed():
		}
	}
}

// renderUntilDone renders every template once, retrying until they all
// render (exit_after_auth).
func (r *renderer) renderUntilDone(ctx context.Context) error {
	if err := r.loop(ctx, true); err != nil {
		return err
	}
	return ctx.Err()
}

// retryDelay doubles from 1s to a minute.
func retryDelay(attempt int) time.Duration {
	d := time.Second << min(attempt-1, 6)
	return min(d, time.Minute)
}

// chown gives the destination the template's user and group (names or
// numeric IDs). Only root can; without them, or as another user, the file
// keeps the agent's.
func chown(tc *config.Template) error {
	if (tc.User == "" && tc.Group == "") || os.Geteuid() != 0 {
		return nil
	}
	uid, gid := -1, -1
	if tc.User != "" {
		u, err := user.Lookup(tc.User)
		if err != nil {
			if u, err = user.LookupId(tc.User); err != nil {
				return fmt.Errorf("user %q: %w", tc.User, err)
			}
		}
		uid, _ = strconv.Atoi(u.Uid)
	}
	if tc.Group != "" {
		g, err := user.LookupGroup(tc.Group)
		if err != nil {
			if g, err = user.LookupGroupId(tc.Group); err != nil {
				return fmt.Errorf("group %q: %w", tc.Group, err)
			}
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	return os.Chown(tc.Destination, uid, gid)
}
