-- Publish outbox rows to one stream, each at most once.
-- KEYS[1] the stream, KEYS[2] the sorted set of event ids already relayed to it
-- ({<stream>}:outbox, in the stream's cluster slot; score: when, in ms)
-- ARGV[1] now (ms), ARGV[2] how long an id is remembered (ms), ARGV[3] MAXLEN (0 = no trim),
-- ARGV[4] how many entries follow; then for each: event id, number of field/value
-- strings n, then those n strings.
-- Returns, per entry in order, the new entry id, or '' when the event id was already
-- relayed within the remembered window (a relay that died before deleting its rows).
-- The ids are recorded after the XADDs: a script failing half-way can make a later
-- relay add an entry again, never skip one.
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local maxlen = tonumber(ARGV[3])
local count = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - ttl)
local results = {}
local added = {}
local i = 5
for e = 1, count do
  local event_id = ARGV[i]
  local n = tonumber(ARGV[i + 1])
  i = i + 2
  if redis.call('ZSCORE', KEYS[2], event_id) then
    results[e] = ''
  else
    if maxlen > 0 then
      results[e] = redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', unpack(ARGV, i, i + n - 1))
    else
      results[e] = redis.call('XADD', KEYS[1], '*', unpack(ARGV, i, i + n - 1))
    end
    added[#added + 1] = now
    added[#added + 1] = event_id
  end
  i = i + n
end
for first = 1, #added, 1000 do  -- unpack() takes a few thousand values at most
  redis.call('ZADD', KEYS[2], unpack(added, first, math.min(first + 999, #added)))
end
redis.call('PEXPIRE', KEYS[2], ttl)
return results
