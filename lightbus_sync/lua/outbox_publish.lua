-- Publish outbox rows to one stream, each at most once.
-- KEYS[1] the stream, KEYS[2] the sorted set of event ids already relayed to it
-- ({<stream>}:outbox, in the stream's cluster slot; score: when, in ms)
-- ARGV[1] now (ms), ARGV[2] how long an id is remembered (ms), ARGV[3] MAXLEN (0 = no trim),
-- then for each entry: its event id, and its fields as a JSON array [name, value, ...].
-- Returns, per entry in order, the new entry id, or '' when the event id was already
-- relayed within the remembered window (a relay that died before deleting its rows).
-- The ids are recorded after the XADDs: a script failing half-way can make a later
-- relay add an entry again, never skip one.
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local maxlen = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - ttl)
local results = {}
local added = {}
for i = 4, #ARGV, 2 do
  local event_id = ARGV[i]
  if redis.call('ZSCORE', KEYS[2], event_id) then
    results[#results + 1] = ''
  else
    local fields = cjson.decode(ARGV[i + 1])
    if maxlen > 0 then
      results[#results + 1] = redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', unpack(fields))
    else
      results[#results + 1] = redis.call('XADD', KEYS[1], '*', unpack(fields))
    end
    added[#added + 1] = now
    added[#added + 1] = event_id
  end
end
for first = 1, #added, 1000 do  -- unpack() takes a few thousand values at most
  redis.call('ZADD', KEYS[2], unpack(added, first, math.min(first + 999, #added)))
end
redis.call('PEXPIRE', KEYS[2], ttl)
return results
