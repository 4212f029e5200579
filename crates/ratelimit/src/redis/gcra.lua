-- GCRA on the server's clock, in microseconds (exact in Lua's doubles for ~142 years).
-- KEYS[1]: the bucket. ARGV[1]: emission interval T; ARGV[2]: tolerance T*burst;
-- ARGV[3]: cells asked for.
-- Returns {admitted (0/1), remaining, retry_after_us, reset_after_us}.
-- Needs Redis >= 5 (effects replication is the default, so TIME before a write is fine).
local t = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then
  tat = now
end
local new_tat = tat + n * t
local allow_at = new_tat - tau
if now < allow_at then
  return {0, math.floor((tau - (tat - now)) / t), allow_at - now, tat - now}
end
if n > 0 then
  -- The key expires when the bucket is full again, so idle keys cost nothing.
  redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
end
return {1, math.floor((tau - (new_tat - now)) / t), 0, new_tat - now}
