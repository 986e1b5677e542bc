package ha_test

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/server"
)

// The servers listen on 127.0.0.1 and reach each other from 127.0.0.1;
// the client of these tests connects from clientIP, so the active server
// can tell a client's address from a standby's.
const clientIP = "127.0.0.5"

// clientFrom is client with connections made from ip.
func clientFrom(t *testing.T, ip, addr, token string) *vault.Client {
	t.Helper()
	conf := vault.DefaultConfig()
	conf.Address = addr
	conf.MaxRetries = 0
	conf.HttpClient.Transport.(*http.Transport).DialContext = (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)},
	}).DialContext
	c, err := vault.NewClient(conf)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

// boundToken logs in from ip (directly at the active server addr) with an
// AppRole role whose tokens are bound to ip/32, and returns the token.
func boundToken(t *testing.T, root *vault.Client, addr, ip string) string {
	t.Helper()
	role := "bound-" + strings.ReplaceAll(ip, ".", "-")
	if _, err := root.Logical().Write("auth/approle/role/"+role, map[string]any{
		"bind_secret_id": false, "token_bound_cidrs": ip + "/32", "token_policies": "default",
	}); err != nil {
		t.Fatal(err)
	}
	rid, err := root.Logical().Read("auth/approle/role/" + role + "/role-id")
	if err != nil {
		t.Fatal(err)
	}
	s, err := clientFrom(t, ip, addr, "").Logical().Write("auth/approle/login", map[string]any{"role_id": rid.Data["role_id"]})
	if err != nil {
		t.Fatal(err)
	}
	return s.Auth.ClientToken
}

// lookupSelf reports the status code of auth/token/lookup-self with token
// sent from clientIP to addr, with extra headers.
func lookupSelf(t *testing.T, addr, token string, hdr http.Header) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, addr+"/v1/auth/token/lookup-self", nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("X-Vault-Token", token)
	tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientIP)}}).DialContext}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func forged(addr string) http.Header {
	return http.Header{"X-Arca-Forwarded-Client": {"v1 " + strconv.FormatInt(time.Now().Unix(), 10) + " " + addr + " AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}
}

func TestForwardedRequestKeepsClientAddress(t *testing.T) {
	_, nodes := startNodesWith(t, 2, server.Config{UnsafeAllowAPIAuditCreation: true})
	root, _ := initCluster(t, nodes, 0, 1)
	a := waitActive(t, nodes)
	s := 1 - a
	ac := client(t, nodes[a].addr, root)

	// The active server audits the address of the client, not the standby's.
	logPath := filepath.Join(t.TempDir(), "audit.log")
	if err := ac.Sys().EnableAuditWithOptions("file", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": logPath}}); err != nil {
		t.Fatal(err)
	}

	if err := ac.Sys().EnableAuthWithOptions("approle", &vault.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	toClient := boundToken(t, ac, nodes[a].addr, clientIP)
	toStandby := boundToken(t, ac, nodes[a].addr, "127.0.0.1")

	if got := lookupSelf(t, nodes[s].addr, toClient, nil); got != http.StatusOK {
		t.Errorf("token bound to the client's address, through the standby: %d, want 200", got)
	}
	if got := lookupSelf(t, nodes[s].addr, toStandby, nil); got != http.StatusForbidden {
		t.Errorf("token bound to the standby's address, used by another client through the standby: %d, want 403", got)
	}

	// A client cannot name its own address, at the active server or
	// through a standby: a header with a made-up MAC is ignored.
	if got := lookupSelf(t, nodes[a].addr, toStandby, forged("127.0.0.1:1")); got != http.StatusForbidden {
		t.Errorf("forged client address at the active server: %d, want 403", got)
	}
	if got := lookupSelf(t, nodes[a].addr, toClient, forged("127.0.0.1:1")); got != http.StatusOK {
		t.Errorf("forged client address at the active server, token bound to the real address: %d, want 200", got)
	}
	if got := lookupSelf(t, nodes[s].addr, toStandby, forged("127.0.0.1:1")); got != http.StatusForbidden {
		t.Errorf("forged client address through the standby: %d, want 403", got)
	}
	if got := lookupSelf(t, nodes[s].addr, toClient, forged("10.1.2.3:1")); got != http.StatusOK {
		t.Errorf("forged client address through the standby, token bound to the real address: %d, want 200", got)
	}
	// A request that claims a standby forwarded it but carries no address
	// that verifies is refused, not served as from its TCP peer.
	h := forged("127.0.0.1:1")
	h.Set("X-Arca-Forwarded-By-Standby", "1")
	if got := lookupSelf(t, nodes[a].addr, toStandby, h); got != http.StatusServiceUnavailable {
		t.Errorf("unverifiable forwarded request at the active server: %d, want 503", got)
	}

	// Through a standby, the audit log names the client.
	if _, err := clientFrom(t, clientIP, nodes[s].addr, root).Logical().Write("sys/wrapping/wrap", map[string]any{"marker": "x"}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := false
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e struct {
			Type    string `json:"type"`
			Request struct {
				Path          string `json:"path"`
				RemoteAddress string `json:"remote_address"`
			} `json:"request"`
		}
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Request.Path != "sys/wrapping/wrap" {
			continue
		}
		seen = true
		if e.Request.RemoteAddress != clientIP {
			t.Errorf("audit %s of a forwarded request: remote_address %q, want %q", e.Type, e.Request.RemoteAddress, clientIP)
		}
	}
	if !seen {
		t.Error("the forwarded request is not in the audit log")
	}
	for _, line := range []string{"X-Arca-Forwarded-Client", "x-arca-forwarded-client"} {
		raw, _ := os.ReadFile(logPath)
		if strings.Contains(string(raw), line) {
			t.Errorf("the audit log holds the %s header", line)
		}
	}
}

func TestForwardedAppRoleLoginKeepsClientAddress(t *testing.T) {
	_, nodes := startNodes(t, 2, false)
	root, _ := initCluster(t, nodes, 0, 1)
	a := waitActive(t, nodes)
	s := 1 - a
	ac := client(t, nodes[a].addr, root)
	if err := ac.Sys().EnableAuthWithOptions("approle", &vault.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ac.Logical().Write("auth/approle/role/app", map[string]any{"token_policies": "default"}); err != nil {
		t.Fatal(err)
	}
	rid, err := ac.Logical().Read("auth/approle/role/app/role-id")
	if err != nil {
		t.Fatal(err)
	}
	roleID := rid.Data["role_id"].(string)
	secretID := func(cidr string) string {
		s, err := ac.Logical().Write("auth/approle/role/app/secret-id", map[string]any{"cidr_list": cidr})
		if err != nil {
			t.Fatal(err)
		}
		return s.Data["secret_id"].(string)
	}
	sc := clientFrom(t, clientIP, nodes[s].addr, "")
	login := func(sid string) error {
		_, err := sc.Logical().Write("auth/approle/login", map[string]any{"role_id": roleID, "secret_id": sid})
		return err
	}
	if err := login(secretID("10.0.0.0/8")); err == nil {
		t.Error("login through the standby with a secret ID bound to 10.0.0.0/8 succeeded")
	}
	if err := login(secretID("127.0.0.1/32")); err == nil {
		t.Error("login through the standby with a secret ID bound to the standby's address succeeded")
	}
	if err := login(secretID(clientIP + "/32")); err != nil {
		t.Errorf("login through the standby with a secret ID bound to the client's address: %v", err)
	}
}
