-- Replay one dead letter to its original consumer group only, atomically.
-- The original fields go to the group's replay stream {<stream>}:replay:<group> (read by
-- that group alone), then the dead-letter entry is deleted. Nothing is lost if a step
-- fails: the XADD comes before the XDEL, and a script error stops before the XDEL.
-- KEYS[1] dead-letter stream {<stream>}:dead, KEYS[2] replay stream {<stream>}:replay:<group>
--   (same hash tag, same cluster slot)
-- ARGV[1] dead-letter entry id, ARGV[2] group, ARGV[3..] field, value, ... (the original fields)
-- Returns the new entry id, or nil if the dead-letter entry is gone (replayed or purged).
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then
  return false
end
if #ARGV < 4 then
  return redis.error_reply('ERR dead letter ' .. ARGV[1] .. ' has no original fields to replay')
end
local created = redis.pcall('XGROUP', 'CREATE', KEYS[2], ARGV[2], '0', 'MKSTREAM')
if type(created) == 'table' and created.err and string.sub(created.err, 1, 9) ~= 'BUSYGROUP' then
  return redis.error_reply(created.err)
end
local fields = {}
for i = 3, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
local id = redis.call('XADD', KEYS[2], '*', unpack(fields))
redis.call('XDEL', KEYS[1], ARGV[1])
return id
