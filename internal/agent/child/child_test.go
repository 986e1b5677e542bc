package child

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests run real /bin/sh children. They are not parallel: signals sent
// to the test process reach every running Run.

type result struct {
	code int
	err  error
}

// start runs Run in the background and returns the channel of its result.
func runAsync(ctx context.Context, opts Options, envs <-chan []string) <-chan result {
	out := make(chan result, 1)
	go func() {
		code, err := Run(ctx, opts, envs)
		out <- result{code, err}
	}()
	return out
}

func wait(t *testing.T, res <-chan result) result {
	t.Helper()
	select {
	case r := <-res:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
		return result{}
	}
}

// waitFile polls until the file contains want.
func waitFile(t *testing.T, path, want string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), want) {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never contained %q; it has %q", filepath.Base(path), want, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

func envOnce(env ...string) chan []string {
	ch := make(chan []string, 1)
	ch <- env
	return ch
}

func TestEnvPassedOverBaseEnv(t *testing.T) {
	var out bytes.Buffer
	code, err := Run(context.Background(), Options{
		Argv:    sh(`echo "$A|$B|$C"`),
		BaseEnv: []string{"A=base", "B=kept", "PATH=" + os.Getenv("PATH")},
		Stdout:  &out,
	}, envOnce("A=secret", "C=added"))
	if err != nil || code != 0 {
		t.Fatalf("Run: %d %v", code, err)
	}
	if got := out.String(); got != "secret|kept|added\n" {
		t.Fatalf("child saw %q", got)
	}
}

func TestPristineWhenBaseEnvNil(t *testing.T) {
	t.Setenv("ARCA_CHILD_LEAK", "visible")
	var out bytes.Buffer
	code, err := Run(context.Background(), Options{
		Argv:   sh(`echo "[$ARCA_CHILD_LEAK][$S]"`),
		Stdout: &out,
	}, envOnce("S=1"))
	if err != nil || code != 0 || out.String() != "[][1]\n" {
		t.Fatalf("Run: %d %v %q", code, err, out.String())
	}
}

func TestEnvsClosedBeforeFirstStartsWithBaseEnv(t *testing.T) {
	envs := make(chan []string)
	close(envs)
	var out bytes.Buffer
	code, err := Run(context.Background(), Options{
		Argv: sh(`echo "$A"`), BaseEnv: []string{"A=base"}, Stdout: &out,
	}, envs)
	if err != nil || code != 0 || out.String() != "base\n" {
		t.Fatalf("Run: %d %v %q", code, err, out.String())
	}
}

func TestExitCodePassedThrough(t *testing.T) {
	var errOut bytes.Buffer
	code, err := Run(context.Background(), Options{
		Argv: sh(`echo oops >&2; exit 7`), BaseEnv: os.Environ(), Stderr: &errOut,
	}, envOnce())
	if err != nil || code != 7 {
		t.Fatalf("Run: %d %v, want 7", code, err)
	}
	if errOut.String() != "oops\n" {
		t.Fatalf("stderr %q", errOut.String())
	}
}

func TestStdinGiven(t *testing.T) {
	var out bytes.Buffer
	code, err := Run(context.Background(), Options{
		Argv: []string{"cat"}, BaseEnv: os.Environ(), Stdin: strings.NewReader("piped"), Stdout: &out,
	}, envOnce())
	if err != nil || code != 0 || out.String() != "piped" {
		t.Fatalf("Run: %d %v %q", code, err, out.String())
	}
}

func TestKilledBySignalIs128PlusN(t *testing.T) {
	code, err := Run(context.Background(), Options{Argv: sh(`kill -KILL $$`), BaseEnv: os.Environ()}, envOnce())
	if err != nil || code != 128+9 {
		t.Fatalf("Run: %d %v, want 137", code, err)
	}
}

func TestCommandNotFound(t *testing.T) {
	code, err := Run(context.Background(), Options{Argv: []string{"arca-no-such-command"}, BaseEnv: os.Environ()}, envOnce())
	if code != 127 || err == nil || !strings.Contains(err.Error(), "arca-no-such-command") {
		t.Fatalf("Run: %d %v, want 127 and an error naming the command", code, err)
	}
	code, err = Run(context.Background(), Options{}, envOnce())
	if code != 127 || err == nil {
		t.Fatalf("empty Argv: %d %v", code, err)
	}
}

func TestNotExecutable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(path, []byte("#!/bin/sh\nexit 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, err := Run(context.Background(), Options{Argv: []string{path}}, envOnce())
	if code != 126 || err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Run: %d %v, want 126", code, err)
	}
}

func TestSignalsForwarded(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	script := `trap 'echo usr1 >> "$LOG"' USR1
trap 'echo hup >> "$LOG"' HUP
trap 'echo term >> "$LOG"; exit 3' TERM
echo ready >> "$LOG"
while :; do sleep 0.05; done`
	res := runAsync(context.Background(), Options{Argv: sh(script), BaseEnv: os.Environ()}, envOnce("LOG="+log))
	waitFile(t, log, "ready")
	for _, s := range []syscall.Signal{syscall.SIGUSR1, syscall.SIGHUP} {
		if err := syscall.Kill(os.Getpid(), s); err != nil {
			t.Fatal(err)
		}
	}
	waitFile(t, log, "usr1")
	waitFile(t, log, "hup")
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := wait(t, res)
	if r.err != nil || r.code != 3 {
		t.Fatalf("Run: %d %v, want the child's 3", r.code, r.err)
	}
	waitFile(t, log, "term")
}

// restartScript logs its start and the stop signal (HUP) with the value of V
// it was started with, and on USR1 logs "still $V" and exits.
const restartScript = `trap 'echo "stopped $V" >> "$LOG"; exit 0' HUP
trap 'echo "still $V" >> "$LOG"; exit 5' USR1
echo "start $V" >> "$LOG"
while :; do sleep 0.05; done`

func TestRestartOnNewEnv(t *testing.T) {
	log := filepath.Join(t.TempDir(), "log")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	envs := make(chan []string)
	res := runAsync(ctx, Options{
		Argv: sh(restartScript), BaseEnv: append(os.Environ(), "LOG="+log),
		Restart: true, StopSignal: syscall.SIGHUP,
	}, envs)
	envs <- []string{"V=one"}
	waitFile(t, log, "start one")
	envs <- []string{"V=two"}
	waitFile(t, log, "start two")
	cancel()
	r := wait(t, res)
	if r.err != nil || r.code != 0 {
		t.Fatalf("Run: %d %v", r.code, r.err)
	}
	got := waitFile(t, log, "stopped two")
	want := "start one\nstopped one\nstart two\nstopped two\n"
	if got != want {
		t.Fatalf("log %q, want %q", got, want)
	}
}

func TestNoRestartWhenRestartFalse(t *testing.T) {
	log := filepath.Join(t.TempDir(), "log")
	envs := make(chan []string)
	res := runAsync(context.Background(), Options{
		Argv: sh(restartScript), BaseEnv: append(os.Environ(), "LOG="+log),
	}, envs)
	envs <- []string{"V=one"}
	waitFile(t, log, "start one")
	envs <- []string{"V=two"} // received by Run's loop before the signal below
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	r := wait(t, res)
	if r.err != nil || r.code != 5 {
		t.Fatalf("Run: %d %v, want 5", r.code, r.err)
	}
	if got := waitFile(t, log, "still"); got != "start one\nstill one\n" {
		t.Fatalf("log %q: the child was restarted or stopped", got)
	}
}

func TestContextCancelStopsChildAndItsGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	ctx, cancel := context.WithCancel(context.Background())
	// The child starts a grandchild and waits for it: the stop must reach both.
	script := `sleep 1000 & echo $! > "$PIDFILE.tmp"; mv "$PIDFILE.tmp" "$PIDFILE"; wait`
	res := runAsync(ctx, Options{Argv: sh(script), BaseEnv: append(os.Environ(), "PIDFILE="+pidFile)}, envOnce())
	pidText := strings.TrimSpace(waitFile(t, pidFile, "\n"))
	grandchild, err := strconv.Atoi(pidText)
	if err != nil {
		t.Fatalf("pid file %q", pidText)
	}
	cancel()
	r := wait(t, res)
	if r.err != nil || r.code != 128+int(syscall.SIGTERM) {
		t.Fatalf("Run: %d %v, want 143", r.code, r.err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for alive(grandchild) {
		if time.Now().After(deadline) {
			syscall.Kill(grandchild, syscall.SIGKILL)
			t.Fatal("the grandchild survived the stop")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alive reports whether pid runs (a zombie does not count).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	// pid (comm) S ...: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X')
}

func TestKillTimeoutKillsChildIgnoringStop(t *testing.T) {
	log := filepath.Join(t.TempDir(), "log")
	ctx, cancel := context.WithCancel(context.Background())
	script := `trap '' TERM; echo ready > "$LOG"; while :; do sleep 0.05; done`
	res := runAsync(ctx, Options{
		Argv: sh(script), BaseEnv: append(os.Environ(), "LOG="+log), KillTimeout: 100 * time.Millisecond,
	}, envOnce())
	waitFile(t, log, "ready")
	cancel()
	r := wait(t, res)
	if r.err != nil || r.code != 128+int(syscall.SIGKILL) {
		t.Fatalf("Run: %d %v, want 137", r.code, r.err)
	}
}

func TestContextDoneBeforeFirstEnv(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	log := filepath.Join(t.TempDir(), "log")
	_, err := Run(ctx, Options{Argv: sh(`echo ran > "$LOG"`), BaseEnv: []string{"LOG=" + log}}, make(chan []string))
	if err == nil {
		t.Fatal("Run returned no error")
	}
	if _, statErr := os.Stat(log); statErr == nil {
		t.Fatal("the child ran")
	}
}

func TestMerge(t *testing.T) {
	got := Merge([]string{"A=1", "B=2", "C=3"}, []string{"B=x", "D=4", "B=y"})
	want := []string{"A=1", "C=3", "D=4", "B=y"}
	if !slices.Equal(got, want) {
		t.Fatalf("Merge = %q, want %q", got, want)
	}
}
