-- POST a new version of one of 1,000 keys with a token from TOKEN.
local token = os.getenv("TOKEN") or ""
local body = '{"data":{"username":"app","password":"s3cr3t-value-0123456789"}}'
request = function()
  local path = "/v1/secret/data/bench/w" .. math.random(0, 999)
  return wrk.format("POST", path, { ["X-Vault-Token"] = token, ["Content-Type"] = "application/json" }, body)
end

done = function(summary, latency, requests)
  io.write(string.format("RESULT rps=%.0f p50_ms=%.2f p99_ms=%.2f errors=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
