// Package arcaproc runs real arca server processes for tests and
// benchmarks that kill them: it builds the binary once, starts servers on
// free loopback ports from a storage stanza, and drives a cluster of them
// (init, unseal, find the active one) over HTTP.
package arcaproc

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	vault "github.com/hashicorp/vault/api"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds cmd/arca once per process into a temporary directory and
// returns its path. Cleanup removes it. $ARCA_TEST_BINARY, when set, names a
// binary built beforehand (a -race build, say) to use instead.
func Binary() (string, error) {
	if bin := os.Getenv("ARCA_TEST_BINARY"); bin != "" {
		return bin, nil
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "arca-proc-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "arca")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/arcasec/arca/cmd/arca").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	return binPath, buildErr
}

// Cleanup removes the built binary.
func Cleanup() {
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
}

// Server is one arca server process.
type Server struct {
	Addr string // http://127.0.0.1:port, also its api_addr
	conf string
	log  *bytes.Buffer

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start writes a configuration in dir (storage stanza, a plain-HTTP
// listener on a free loopback port, api_addr on it) and starts the server.
func Start(dir, storageStanza string) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	conf := filepath.Join(dir, "server.hcl")
	hcl := storageStanza + fmt.Sprintf(`
disable_mlock = true
api_addr = "http://%s"
listener "tcp" {
  address     = %q
  tls_disable = true
}
`, addr, addr)
	if err := os.WriteFile(conf, []byte(hcl), 0o600); err != nil {
		return nil, err
	}
	s := &Server{Addr: "http://" + addr, conf: conf}
	return s, s.Restart()
}

// Restart starts the process again (after Kill) on the same address.
func (s *Server) Restart() error {
	bin, err := Binary()
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "server", "-config="+s.conf)
	log := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = &syncWriter{b: log}, &syncWriter{b: log}
	if err := cmd.Start(); err != nil {
		return err
	}
	s.mu.Lock()
	s.cmd, s.log = cmd, log
	s.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.Addr + "/v1/sys/seal-status")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Kill()
	return fmt.Errorf("server did not start:\n%s", s.Log())
}

// Kill sends SIGKILL and waits for the process to end.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}
}

// Log returns what the process wrote so far.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.log == nil {
		return ""
	}
	return s.log.String()
}

type syncWriter struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// Client is a vault/api client for addr that does not retry on its own.
func Client(addr, token string) (*vault.Client, error) {
	conf := vault.DefaultConfig()
	conf.Address = addr
	conf.MaxRetries = 0
	conf.Timeout = 15 * time.Second
	c, err := vault.NewClient(conf)
	if err != nil {
		return nil, err
	}
	c.SetToken(token)
	return c, nil
}

// Health returns the status code of addr's sys/health (0 when it does not
// answer).
func Health(addr string) int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(addr + "/v1/sys/health")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// InitAndUnseal initialises the store through servers[0] with one key and
// unseals each of servers; it returns the root token and the key.
func InitAndUnseal(servers []*Server) (root, key string, err error) {
	c, err := Client(servers[0].Addr, "")
	if err != nil {
		return "", "", err
	}
	res, err := c.Sys().Init(&vault.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		return "", "", err
	}
	for _, s := range servers {
		if err := Unseal(s, res.Keys[0]); err != nil {
			return "", "", err
		}
	}
	return res.RootToken, res.Keys[0], nil
}

// Unseal unseals s with key.
func Unseal(s *Server, key string) error {
	c, err := Client(s.Addr, "")
	if err != nil {
		return err
	}
	_, err = c.Sys().Unseal(key)
	return err
}

// WaitActive waits up to timeout for exactly one of servers to report
// active in sys/health and returns its index; it fails if two do.
func WaitActive(servers []*Server, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		active, count := -1, 0
		for i, s := range servers {
			if Health(s.Addr) == http.StatusOK {
				active, count = i, count+1
			}
		}
		if count > 1 {
			return -1, fmt.Errorf("%d servers report active at once", count)
		}
		if count == 1 {
			return active, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return -1, fmt.Errorf("no server became active within %s", timeout)
}
