package server_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/arcasec/arca/internal/seal"
	"github.com/arcasec/arca/internal/server"
)

// startWithListener starts an initialised, unsealed server on in-memory
// storage with the given listener and returns its address and root token.
func startWithListener(t *testing.T, lc server.ListenerConfig) (addr, root string) {
	t.Helper()
	lc.Type, lc.Address, lc.TLSDisable = "tcp", "127.0.0.1:0", true
	srv, err := server.New(&server.Config{Storage: server.StorageConfig{Type: "inmem"}, Listeners: []server.ListenerConfig{lc}},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := srv.Core.Init(ctx, seal.Config{Shares: 1, Threshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Core.Unseal(ctx, res.Shares[0]); err != nil {
		t.Fatal(err)
	}
	addrs, err := srv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return addrs[0], res.RootToken
}

// dripUntilClosed sends head, then one byte of filler at a time, until the
// server closes the connection. It returns what the server sent. It fails
// the test if the server is still reading after many drips: far more than
// the timeouts under test allow.
func dripUntilClosed(t *testing.T, addr, head string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	received := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(conn) // returns when the server closes
		received <- string(b)
	}()
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	const maxDrips = 2000 // 20s of dripping; the server under test allows well under a second
	for range maxDrips {
		select {
		case got := <-received:
			return got
		default:
		}
		if _, err := conn.Write([]byte("a")); err != nil {
			return <-received
		}
		time.Sleep(10 * time.Millisecond) // the drip itself: a slow client is the point
	}
	t.Fatalf("the server still held the connection open after %d dripped bytes", maxDrips)
	return ""
}

// TestSlowBodyIsCutOff: a client that sends its headers and then drips the
// body cannot hold a connection: http_read_timeout bounds the whole request.
func TestSlowBodyIsCutOff(t *testing.T) {
	addr, root := startWithListener(t, server.ListenerConfig{ReadTimeout: 200 * time.Millisecond, ReadHeaderTimeout: 100 * time.Millisecond})
	// A request that reads its body: a valid token and a write.
	head := "PUT /v1/sys/policies/acl/slow HTTP/1.1\r\nHost: arca\r\nX-Vault-Token: " + root +
		"\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{\"policy\":\""
	got := dripUntilClosed(t, addr, head)
	if resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(got)), nil); err == nil && resp.StatusCode >= 500 {
		t.Fatalf("the server answered a slow body with %s", resp.Status)
	}
}

// TestSlowHeadersAreCutOff: dripping the headers is bounded by
// http_read_header_timeout.
func TestSlowHeadersAreCutOff(t *testing.T) {
	addr, _ := startWithListener(t, server.ListenerConfig{ReadHeaderTimeout: 100 * time.Millisecond})
	dripUntilClosed(t, addr, "GET /v1/sys/health HTTP/1.1\r\nHost: arca\r\nX-Filler: ")
}

// TestIdleConnectionIsClosed: a keep-alive connection with no next request
// is closed after http_idle_timeout.
func TestIdleConnectionIsClosed(t *testing.T) {
	addr, _ := startWithListener(t, server.ListenerConfig{IdleTimeout: 100 * time.Millisecond})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second)) // a bound on a hung test, far beyond the timeout
	if _, err := io.WriteString(conn, "GET /v1/sys/health HTTP/1.1\r\nHost: arca\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Close {
		t.Fatal("the server closed the connection after one request; keep-alive is needed for this test")
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("waiting on an idle connection: %v, want the server to close it (EOF)", err)
	}
}
