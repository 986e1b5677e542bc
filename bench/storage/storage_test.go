// Package storage benchmarks KV v2 through a real in-process server (HTTP on
// loopback, a policy token) on each persistent backend: bolt (fsync'd group
// commits) and PostgreSQL (a throwaway cluster on this machine with fsync
// and synchronous_commit on, as in production).
//
//	go test ./bench/storage/ -run XXX -bench . -benchtime 10s
//
// Each benchmark runs 8 × GOMAXPROCS concurrent clients (16 on two cores,
// as bench/server's c=16 rows) and reports req/s.
package storage

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/arcasec/arca/internal/server"
	"github.com/arcasec/arca/internal/server/servertest"
	"github.com/arcasec/arca/internal/testutil/pgtest"
)

var cluster *pgtest.Cluster

func TestMain(m *testing.M) {
	code := m.Run()
	if cluster != nil {
		cluster.Close()
	}
	os.Exit(code)
}

func storages(b *testing.B) map[string]server.StorageConfig {
	if cluster == nil {
		c, err := pgtest.NewWith("fsync=on", "synchronous_commit=on", "max_connections=200")
		if err != nil {
			b.Fatal(err)
		}
		cluster = c
	}
	return map[string]server.StorageConfig{
		"bolt": {Type: "bolt", Options: map[string]string{"path": filepath.Join(b.TempDir(), "arca.db")}},
		"postgresql": {Type: "postgresql", Options: map[string]string{"connection_url": cluster.URL(),
			"table": fmt.Sprintf("bench_%d", seq.Add(1))}},
	}
}

var seq atomic.Int64

const clientsPerProc = 8

type target struct {
	addr, token string
	client      *http.Client
}

func (t *target) do(b *testing.B, method, path, body string) {
	req, _ := http.NewRequest(method, t.addr+"/v1/"+path, bytes.NewBufferString(body))
	req.Header.Set("X-Vault-Token", t.token)
	resp, err := t.client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		b.Fatalf("%s %s: %d", method, path, resp.StatusCode)
	}
}

// start starts a server on sc with 1,000 keys and returns a client with a
// token whose policy reads and writes secret/data/bench/*.
func start(b *testing.B, sc server.StorageConfig) *target {
	addr, root := servertest.StartDevOn(b, sc)
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	t := &target{addr: addr, token: root, client: &http.Client{Transport: tr}}
	t.do(b, "PUT", "sys/policies/acl/bench", `{"policy":"path \"secret/data/bench/*\" { capabilities = [\"read\", \"create\", \"update\"] }"}`)
	req, _ := http.NewRequest("POST", addr+"/v1/auth/token/create", bytes.NewBufferString(`{"policies":["bench"]}`))
	req.Header.Set("X-Vault-Token", root)
	resp, err := t.client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	i := bytes.Index(raw, []byte(`"client_token":"`))
	if i < 0 {
		b.Fatalf("token create: %s", raw)
	}
	rest := raw[i+len(`"client_token":"`):]
	t.token = string(rest[:bytes.IndexByte(rest, '"')])
	for k := 0; k < 1000; k++ {
		t.do(b, "POST", fmt.Sprintf("secret/data/bench/k%d", k), `{"data":{"username":"app","password":"s3cr3t"}}`)
	}
	return t
}

func BenchmarkKVv2Read(b *testing.B) {
	// The servers start once, in the parent: sub-benchmarks run several times.
	scs := storages(b)
	for _, name := range []string{"bolt", "postgresql"} {
		t := start(b, scs[name])
		b.Run(name, func(b *testing.B) {
			var n atomic.Int64
			b.SetParallelism(clientsPerProc)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					t.do(b, "GET", fmt.Sprintf("secret/data/bench/k%d", n.Add(1)%1000), "")
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

func BenchmarkKVv2Write(b *testing.B) {
	// The servers start once, in the parent: sub-benchmarks run several times.
	scs := storages(b)
	for _, name := range []string{"bolt", "postgresql"} {
		t := start(b, scs[name])
		b.Run(name, func(b *testing.B) {
			var n atomic.Int64
			b.SetParallelism(clientsPerProc)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					t.do(b, "POST", fmt.Sprintf("secret/data/bench/k%d", n.Add(1)%1000), `{"data":{"username":"app","password":"s3cr3t"}}`)
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}
