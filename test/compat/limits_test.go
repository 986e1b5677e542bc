package compat

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/arcasec/arca/internal/server/servertest"
)

// rawRequest sends one request with the root token and returns the status,
// headers and body.
func rawRequest(t *testing.T, method, url, token, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, raw
}

// TestRateLimitQuota sets a small quota on the KV mount and sends a burst
// above it: some requests get 429 with Retry-After, the rest succeed, and
// paths outside the quota stay responsive throughout.
func TestRateLimitQuota(t *testing.T) {
	ctx := context.Background()
	addr, root := servertest.StartDev(t)
	c := newClient(t, addr, root)
	if _, err := c.KVv2("secret").Put(ctx, "app", map[string]any{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("sys/quotas/rate-limit/kv", map[string]any{"path": "secret/", "rate": 5, "interval": "10s"}); err != nil {
		t.Fatalf("creating the quota: %v", err)
	}
	q, err := c.Logical().Read("sys/quotas/rate-limit/kv")
	if err != nil || q == nil || q.Data["path"] != "secret/" || q.Data["type"] != "rate-limit" || q.Data["interval"] != json.Number("10") {
		t.Fatalf("reading the quota: %v, %v", q, err)
	}
	if _, err := c.Logical().Write("sys/quotas/rate-limit/bad", map[string]any{"path": "secret/", "rate": -1}); statusOf(err) != 400 {
		t.Fatalf("a negative rate: %v, want 400", err)
	}
	if _, err := c.Logical().Write("sys/quotas/rate-limit/bad", map[string]any{"path": "nomount/", "rate": 1}); statusOf(err) != 400 {
		t.Fatalf("a quota on no mount: %v, want 400", err)
	}

	var mu sync.Mutex
	codes := map[int]int{}
	retryAfter := ""
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, hdr, _ := rawRequest(t, "GET", addr+"/v1/secret/data/app", root, "")
			mu.Lock()
			codes[code]++
			if code == 429 {
				retryAfter = hdr.Get("Retry-After")
			}
			mu.Unlock()
		}()
	}
	// Meanwhile the server answers outside the quota.
	for i := 0; i < 10; i++ {
		if code, _, _ := rawRequest(t, "GET", addr+"/v1/sys/health", "", ""); code != 200 {
			t.Fatalf("sys/health during the burst: %d", code)
		}
		if code, _, _ := rawRequest(t, "GET", addr+"/v1/sys/mounts", root, ""); code != 200 {
			t.Fatalf("sys/mounts during the burst: %d", code)
		}
	}
	wg.Wait()
	if codes[200] != 5 || codes[429] != 35 {
		t.Fatalf("burst of 40 against a quota of 5: %v", codes)
	}
	if n, err := strconv.Atoi(retryAfter); err != nil || n < 1 || n > 10 {
		t.Fatalf("Retry-After %q, want 1..10 seconds", retryAfter)
	}

	// The violations are counted in the metrics.
	_, _, body := rawRequest(t, "GET", addr+"/v1/sys/metrics?format=prometheus", root, "")
	if !strings.Contains(string(body), `arca_quota_rate_limit_violations_total{quota="kv"} 35`) {
		t.Fatal("the metrics do not count the 35 refused requests")
	}
	// A global quota of one request a minute shuts everyone out, except
	// from sys/quotas/, where it can be removed.
	if _, err := c.Logical().Write("sys/quotas/rate-limit/all", map[string]any{"rate": 1, "interval": "1m"}); err != nil {
		t.Fatal(err)
	}
	rawRequest(t, "GET", addr+"/v1/sys/mounts", root, "")
	if code, _, _ := rawRequest(t, "GET", addr+"/v1/sys/mounts", root, ""); code != 429 {
		t.Fatalf("second request under a global quota of 1/min: %d, want 429", code)
	}
	for _, q := range []string{"all", "kv"} {
		if _, err := c.Logical().Delete("sys/quotas/rate-limit/" + q); err != nil {
			t.Fatalf("deleting quota %s under the quota: %v", q, err)
		}
	}
	if _, err := c.Logical().Write("sys/quotas/rate-limit/bad", map[string]any{"rate": 1, "interval": "-5s"}); statusOf(err) != 400 {
		t.Fatalf("a negative interval: %v, want 400", err)
	}
	if code, _, _ := rawRequest(t, "GET", addr+"/v1/secret/data/app", root, ""); code != 200 {
		t.Fatalf("read after deleting the quota: %d", code)
	}
}

// TestMetrics reads sys/metrics in both formats and parses the Prometheus
// form with the Prometheus project's own parser.
func TestMetrics(t *testing.T) {
	ctx := context.Background()
	addr, root := servertest.StartDev(t)
	c := newClient(t, addr, root)
	if _, err := c.KVv2("secret").Put(ctx, "m", map[string]any{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KVv2("secret").Get(ctx, "m"); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := rawRequest(t, "GET", addr+"/v1/sys/metrics?format=prometheus", "", ""); code != 403 {
		t.Fatalf("metrics without a token: %d, want 403", code)
	}
	code, hdr, body := rawRequest(t, "GET", addr+"/v1/sys/metrics?format=prometheus", root, "")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Fatalf("prometheus metrics: %d %s", code, hdr.Get("Content-Type"))
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("the Prometheus parser rejects the output: %v", err)
	}
	value := func(name string, labels map[string]string) (float64, bool) {
		mf := families[name]
		if mf == nil {
			return 0, false
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			}
		}
		return 0, false
	}
	if v, ok := value("arca_core_unsealed", nil); !ok || v != 1 {
		t.Fatalf("arca_core_unsealed = %v (%v)", v, ok)
	}
	if v, ok := value("arca_core_active", nil); !ok || v != 1 {
		t.Fatalf("arca_core_active = %v (%v)", v, ok)
	}
	if v, ok := value("arca_core_requests_total", map[string]string{"mount": "secret/", "operation": "read", "status": "200"}); !ok || v < 1 {
		t.Fatalf("no successful KV read counted: %v", v)
	}
	if v, ok := value("arca_core_request_duration_seconds", map[string]string{"mount": "secret/", "operation": "read"}); !ok || v < 1 {
		t.Fatal("no KV read latency observed")
	}
	if v, ok := value("arca_token_count", nil); !ok || v != 1 {
		t.Fatalf("arca_token_count = %v, want 1 (the root token)", v)
	}
	if v, ok := value("arca_storage_operation_duration_seconds", map[string]string{"backend": servertest.DevStorage(t).Type, "operation": "put"}); !ok || v < 1 {
		t.Fatal("no storage latency observed")
	}
	if _, ok := value("arca_audit_log_failures_total", nil); ok {
		t.Fatal("audit failures reported with no audit device")
	}

	_, _, body = rawRequest(t, "GET", addr+"/v1/sys/metrics", root, "")
	var js struct {
		Gauges   []struct{ Name string }
		Counters []struct{ Name string }
		Samples  []struct{ Name string }
	}
	if err := json.Unmarshal(body, &js); err != nil || len(js.Gauges) == 0 || len(js.Counters) == 0 || len(js.Samples) == 0 {
		t.Fatalf("JSON metrics: %v, %s", err, body)
	}
}

// TestRequestLimits checks the JSON shape limits and the host and version
// endpoints.
func TestRequestLimits(t *testing.T) {
	addr, root := servertest.StartDev(t)
	deep := strings.Repeat(`{"a":`, 400) + "1" + strings.Repeat("}", 400)
	code, _, body := rawRequest(t, "POST", addr+"/v1/secret/data/deep", root, `{"data":`+deep+`}`)
	if code != 400 || !strings.Contains(string(body), "max_json_depth") {
		t.Fatalf("a 400-deep document: %d %s", code, body)
	}
	if code, _, _ := rawRequest(t, "GET", addr+"/v1/secret/data/deep", root, ""); code != 404 {
		t.Fatalf("the refused write stored something: %d", code)
	}
	wide := `{"data":{"x":[` + strings.Repeat("1,", 20000) + `1]}}`
	if code, _, body := rawRequest(t, "POST", addr+"/v1/secret/data/wide", root, wide); code != 400 || !strings.Contains(string(body), "max_json_array_element_count") {
		t.Fatalf("a 20,001-element array: %d %s", code, body)
	}

	code, _, body = rawRequest(t, "GET", addr+"/v1/sys/host-info", root, "")
	var hi struct {
		Data struct {
			Host   map[string]any `json:"host"`
			Memory map[string]any `json:"memory"`
			CPU    []any          `json:"cpu"`
		} `json:"data"`
	}
	if code != 200 || json.Unmarshal(body, &hi) != nil || hi.Data.Host["hostname"] == nil || hi.Data.Memory["total"] == nil {
		t.Fatalf("host-info: %d %s", code, body)
	}
	code, _, body = rawRequest(t, "LIST", addr+"/v1/sys/version-history", root, "")
	var vh struct {
		Data struct {
			Keys    []string                  `json:"keys"`
			KeyInfo map[string]map[string]any `json:"key_info"`
		} `json:"data"`
	}
	if code != 200 || json.Unmarshal(body, &vh) != nil || len(vh.Data.Keys) != 1 || vh.Data.KeyInfo[vh.Data.Keys[0]]["timestamp_installed"] == nil {
		t.Fatalf("version-history: %d %s", code, body)
	}
}
