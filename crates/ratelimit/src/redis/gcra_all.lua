-- One cell from each of several GCRA buckets, all or none, on the server's clock (µs).
-- KEYS[i]: bucket i. ARGV[2i-1]: its emission interval T; ARGV[2i]: its tolerance T*burst.
-- Returns {admitted (0/1), remaining (the fewest of any bucket), retry_after_us (the
-- longest wait of a refusing bucket), reset_after_us (the longest)}.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local new_tats = {}
local retry = 0
local remaining = nil
local reset = 0
for i, key in ipairs(KEYS) do
  local t = tonumber(ARGV[2 * i - 1])
  local tau = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key))
  if not tat or tat < now then
    tat = now
  end
  local new_tat = tat + t
  local allow_at = new_tat - tau
  if now < allow_at then
    retry = math.max(retry, allow_at - now)
    reset = math.max(reset, tat - now)
    remaining = 0
  else
    local left = math.floor((tau - (new_tat - now)) / t)
    if not remaining or left < remaining then
      remaining = left
    end
    reset = math.max(reset, new_tat - now)
  end
  new_tats[i] = new_tat
end
if retry > 0 then
  return {0, 0, retry, reset}
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, string.format('%.0f', new_tats[i]), 'PX', math.ceil((new_tats[i] - now) / 1000))
end
return {1, remaining or 0, 0, reset}
