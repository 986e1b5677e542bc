// Package child runs an application as the agent's child process: it starts
// it with secrets in its environment, forwards the signals the agent
// receives, restarts it when its environment changes (if asked), and
// reports its exit code so the agent can exit with it. `arca run` and
// `arca file exec-env` run their commands through it too.
package child

import (
	"context"
	"errors"
	"io"
	"os"
	"time"
)

// Options describe the child.
type Options struct {
	Argv []string // the command; Argv[0] is looked up in PATH
	// BaseEnv is the environment the secrets are added to (os.Environ()
	// unless the caller wants a pristine one).
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

// Run starts the child with the first environment received on envs (a list
// of KEY=value added to BaseEnv), forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT,
// SIGUSR1 and SIGUSR2 to it, and returns its exit code when it exits on its
// own (128+N when killed by signal N). When ctx ends the child is stopped
// with StopSignal and Run returns its code.
func Run(ctx context.Context, opts Options, envs <-chan []string) (int, error) {
	return 0, errors.New("child: not implemented")
}
