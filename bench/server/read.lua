-- GET one path with a token: TOKEN and KEYS from the environment.
-- KEYS=1 reads secret/data/bench/hot; KEYS=N reads across bench/k0..k(N-1).
local token = os.getenv("TOKEN") or ""
local keys = tonumber(os.getenv("KEYS") or "1")
local n = 0
request = function()
  local path
  if keys <= 1 then
    path = "/v1/secret/data/bench/hot"
  else
    n = n + 1
    path = "/v1/secret/data/bench/k" .. (math.random(0, keys - 1))
  end
  return wrk.format("GET", path, { ["X-Vault-Token"] = token })
end

done = function(summary, latency, requests)
  io.write(string.format("RESULT rps=%.0f p50_ms=%.2f p99_ms=%.2f errors=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
