-- Reset the idle time of pending entries, but only those still owned by this consumer.
-- Used to renew the lease of in-flight entries (idle 0) and to schedule a retry after a
-- failure (idle = acknowledgement timeout - backoff). JUSTID: delivery count unchanged.
-- KEYS[1] stream; ARGV[1] group, ARGV[2] consumer, ARGV[3] idle ms, ARGV[4..] entry ids
-- Returns the ids whose idle time was set.
-- Everything or nothing: the checks (XPENDING) come first, the writes (XCLAIM) last, and
-- on Redis 7+ the XCLAIM is first checked against the user's ACL.
if redis.acl_check_cmd and #ARGV >= 4
    and not redis.acl_check_cmd('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[4], 'IDLE', ARGV[3], 'JUSTID') then
  return redis.error_reply('NOPERM this user may not run XCLAIM on ' .. KEYS[1])
end
local owned = {}
for i = 4, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if pending[1] and pending[1][2] == ARGV[2] then
    owned[#owned + 1] = ARGV[i]
  end
end
for _, id in ipairs(owned) do
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'IDLE', ARGV[3], 'JUSTID')
end
return owned
