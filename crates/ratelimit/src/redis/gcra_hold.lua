-- Holds back several GCRA buckets, on the server's clock (µs): none grants a cell before
-- `gap` from now, and then one cell at a time at its rate (the bucket is empty then). A
-- bucket already held back longer is left as it is.
-- KEYS[i]: bucket i. ARGV[2i-1]: its emission interval T; ARGV[2i]: its tolerance
-- T*burst; ARGV[2n+1]: the gap. Returns the number of buckets moved.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local gap = tonumber(ARGV[2 * #KEYS + 1])
local moved = 0
for i, key in ipairs(KEYS) do
  local t = tonumber(ARGV[2 * i - 1])
  local tau = tonumber(ARGV[2 * i])
  -- A cell is granted at `now'` when now' >= tat + t - tau.
  local held = now + gap + tau - t
  local tat = tonumber(redis.call('GET', key))
  if held > now and (not tat or tat < held) then
    redis.call('SET', key, string.format('%.0f', held), 'PX', math.ceil((held - now) / 1000))
    moved = moved + 1
  end
end
return moved
