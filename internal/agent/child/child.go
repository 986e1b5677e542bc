// Package child runs an application as the agent's child process: it starts
// it with secrets in its environment, forwards the signals the agent
// receives, restarts it when its environment changes (if asked), and
// reports its exit code so the agent can exit with it. `arca run` and
// `arca file exec-env` run their commands through it too.
//
// Process groups: unless its standard input is a terminal, the child is
// started in a process group of its own, and every signal (forwarded, stop
// or kill) goes to that whole group, so a restart or a stop also ends what
// the child started (a shell's pipeline, a worker pool). The agent forwards
// the signals it receives itself, which is what makes this work under a
// supervisor (systemd, Kubernetes, CI runners) that signals the agent only.
//
// When standard input is a terminal the child stays in the agent's
// (foreground) group instead, so it can read the terminal without being
// stopped by SIGTTIN; the keys ^C and ^\ then reach it from the terminal
// directly, and SIGINT and SIGQUIT are not forwarded a second time. Stops
// and restarts then signal the child process alone.
package child

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"
)

// Options describe the child.
type Options struct {
	Argv []string // the command; Argv[0] is looked up in PATH
	// BaseEnv is the environment the secrets are added to (os.Environ()
	// unless the caller wants a pristine one). A nil BaseEnv is an empty
	// environment: the child does not inherit the caller's.
	BaseEnv []string
	// Restart, when true, restarts the child on every new environment;
	// when false a new environment is ignored.
	Restart     bool
	StopSignal  os.Signal     // sent to stop the child for a restart; SIGTERM when nil
	KillTimeout time.Duration // SIGKILL after this long; 30s when zero
	Stdin       io.Reader
	Stdout      io.Writer
	Stderr      io.Writer
}

// Exit codes Run returns when the command cannot be started, as a shell does.
const (
	ExitNotFound      = 127 // no such command
	ExitCannotExecute = 126 // found but not executable
)

// DefaultKillTimeout is how long a stopping child has before SIGKILL when
// Options.KillTimeout is zero.
const DefaultKillTimeout = 30 * time.Second

// outputDrain bounds how long Run waits, after the child exited, for its
// output to be copied when Stdout or Stderr is not a file: a process the
// child left running in the background may hold the pipe open forever.
const outputDrain = 5 * time.Second

// Forwarded lists the signals Run forwards to the child.
var Forwarded = []os.Signal{
	syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP,
	syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2,
}

// Run starts the child with the first environment received on envs (a list
// of KEY=value added to BaseEnv), forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT,
// SIGUSR1 and SIGUSR2 to it, and returns its exit code when it exits on its
// own (128+N when killed by signal N). When ctx ends the child is stopped
// with StopSignal and Run returns its code.
//
// If envs is closed before it delivers an environment the child starts with
// BaseEnv alone. If ctx ends first, Run returns ctx's error without starting
// it; a forwarded signal received before the start makes Run return 128+N,
// as if the child had been started and killed by it.
//
// A command that cannot be found returns 127 and an error naming it; one
// that cannot be executed returns 126.
func Run(ctx context.Context, opts Options, envs <-chan []string) (int, error) {
	if len(opts.Argv) == 0 || opts.Argv[0] == "" {
		return ExitNotFound, errors.New("child: no command to run")
	}
	path, err := exec.LookPath(opts.Argv[0])
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return ExitCannotExecute, fmt.Errorf("%s: permission denied", opts.Argv[0])
		}
		return ExitNotFound, fmt.Errorf("%s: command not found", opts.Argv[0])
	}
	stopSig := opts.StopSignal
	if stopSig == nil {
		stopSig = syscall.SIGTERM
	}
	killTimeout := opts.KillTimeout
	if killTimeout <= 0 {
		killTimeout = DefaultKillTimeout
	}
	ownGroup := !isTerminal(opts.Stdin)

	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, Forwarded...)
	defer signal.Stop(sigs)

	// The first environment.
	var env []string
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case s := <-sigs:
		return signalCode(s), nil
	case e, ok := <-envs:
		if ok {
			env = e
		} else {
			envs = nil
		}
	}

	ctxDone := ctx.Done()
	for {
		p, err := start(path, opts, Merge(opts.BaseEnv, env), ownGroup)
		if err != nil {
			return ExitCannotExecute, err
		}
		var (
			restart  bool // start again once this child is gone
			stopping bool // the stop signal has been sent
			killAt   <-chan time.Time
		)
		stop := func() {
			if !stopping {
				stopping = true
				p.signal(stopSig)
				killAt = time.After(killTimeout)
			}
		}
	wait:
		for {
			select {
			case <-p.done:
				break wait
			case s := <-sigs:
				if !ownGroup && (s == syscall.SIGINT || s == syscall.SIGQUIT) {
					continue // the terminal delivered it to the child already
				}
				p.signal(s)
			case e, ok := <-envs:
				if !ok {
					envs = nil
					continue
				}
				if !opts.Restart || ctxDone == nil {
					continue
				}
				env, restart = e, true
				stop()
			case <-ctxDone:
				ctxDone, restart = nil, false
				stop()
			case <-killAt:
				killAt = nil
				p.signal(syscall.SIGKILL)
			}
		}
		if !restart {
			return p.code, nil
		}
	}
}

// Merge returns base with env added: an entry of env replaces base's entry
// for the same key, and of two entries of env for one key the later wins.
func Merge(base, env []string) []string {
	key := func(kv string) string {
		if k, _, ok := strings.Cut(kv, "="); ok {
			return k
		}
		return kv
	}
	last := make(map[string]int, len(env))
	for i, kv := range env {
		last[key(kv)] = i
	}
	out := make([]string, 0, len(base)+len(env))
	for _, kv := range base {
		if _, ok := last[key(kv)]; !ok {
			out = append(out, kv)
		}
	}
	for i, kv := range env {
		if last[key(kv)] == i {
			out = append(out, kv)
		}
	}
	return out
}

// process is one started child.
type process struct {
	cmd      *exec.Cmd
	ownGroup bool
	done     chan struct{} // closed when the child has exited and code is set
	code     int
}

func start(path string, opts Options, env []string, ownGroup bool) (*process, error) {
	cmd := exec.Command(path, opts.Argv[1:]...)
	cmd.Args[0] = opts.Argv[0]
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = opts.Stdin, opts.Stdout, opts.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: ownGroup}
	cmd.WaitDelay = outputDrain
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", opts.Argv[0], err)
	}
	p := &process{cmd: cmd, ownGroup: ownGroup, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.code = exitCode(cmd.ProcessState, err)
		close(p.done)
	}()
	return p, nil
}

// signal sends s to the child's process group (or to the child alone when
// it shares the agent's group). A child that is gone is not an error.
func (p *process) signal(s os.Signal) {
	sig, ok := s.(syscall.Signal)
	if !ok {
		return
	}
	select {
	case <-p.done:
		if !p.ownGroup {
			return
		}
		// What the child started may still be running in its group: a stop
		// or kill still reaches it.
	default:
	}
	pid := p.cmd.Process.Pid
	if p.ownGroup {
		pid = -pid
	}
	_ = syscall.Kill(pid, sig)
}

// exitCode is a shell's view of how the child ended: its exit status, or
// 128+N when signal N killed it.
func exitCode(ps *os.ProcessState, err error) int {
	if ps == nil {
		return 1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

func signalCode(s os.Signal) int {
	if sig, ok := s.(syscall.Signal); ok {
		return 128 + int(sig)
	}
	return 1
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
