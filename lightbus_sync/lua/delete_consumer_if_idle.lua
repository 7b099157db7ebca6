-- Delete a consumer only if it holds no pending entries (XGROUP DELCONSUMER would drop
-- them, and they could never be claimed again) and it is not the group's last consumer
-- (Lightbus 1.x workers destroy groups that have no consumers at all). Check and delete
-- are one step here, and the one write comes last (everything or nothing).
-- KEYS[1] stream; ARGV[1] group, ARGV[2] consumer. Returns 1 if deleted, else 0.
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #pending > 0 then
  return 0
end
local consumers = redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if #consumers < 2 then
  return 0
end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
