-- Count the entries after an id without sending them back (for lag when Redis gives
-- none: Redis < 7, or a NULL lag). Bounded: at most ARGV[2] entries per call.
-- KEYS[1] stream; ARGV[1] id to count after (exclusive), ARGV[2] limit
-- Returns {count, id of the last entry counted or ''}.
local entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])
local last = ''
if #entries > 0 then
  last = entries[#entries][1]
end
return {#entries, last}
