-- Reset the idle time of pending entries, but only those still owned by this consumer.
-- Used to renew the lease of in-flight entries (idle 0) and to schedule a retry after a
-- failure (idle = acknowledgement timeout - backoff). JUSTID: delivery count unchanged.
-- KEYS[1] stream; ARGV[1] group, ARGV[2] consumer, ARGV[3] idle ms, ARGV[4..] entry ids
-- Returns the ids whose idle time was set.
local done = {}
for i = 4, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if pending[1] and pending[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'IDLE', ARGV[3], 'JUSTID')
    table.insert(done, ARGV[i])
  end
end
return done
