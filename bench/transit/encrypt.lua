-- POST transit/encrypt/bench with a 64-byte plaintext, or, with BATCH=n, a
-- batch of n such plaintexts; the token comes from TOKEN.
local token = os.getenv("TOKEN") or ""
local batch = tonumber(os.getenv("BATCH") or "0")
local plaintext = string.rep("A", 86) .. "==" -- base64 of 64 bytes
local body
if batch > 0 then
  local items = {}
  for i = 1, batch do items[i] = '{"plaintext":"' .. plaintext .. '"}' end
  body = '{"batch_input":[' .. table.concat(items, ",") .. ']}'
else
  body = '{"plaintext":"' .. plaintext .. '"}'
end
request = function()
  return wrk.format("POST", "/v1/transit/encrypt/bench", { ["X-Vault-Token"] = token, ["Content-Type"] = "application/json" }, body)
end

done = function(summary, latency, requests)
  local rps = summary.requests / (summary.duration / 1e6)
  io.write(string.format("RESULT rps=%.0f items=%.0f p50_ms=%.2f p99_ms=%.2f errors=%d\n",
    rps, rps * math.max(batch, 1),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
