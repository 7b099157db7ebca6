-- Replay one dead letter to its original consumer group only, atomically.
-- The original fields go to the group's replay stream {<stream>}:replay:<group> (read by
-- that group alone), then the dead-letter entry is deleted.
-- KEYS[1] dead-letter stream {<stream>}:dead, KEYS[2] replay stream {<stream>}:replay:<group>
--   (same hash tag, same cluster slot)
-- ARGV[1] dead-letter entry id, ARGV[2] group, ARGV[3..] field, value, ... (the original fields)
-- Returns the new entry id, or nil if the dead-letter entry is gone (replayed or purged).
-- Everything or nothing: every write is first checked against the user's ACL (Redis 7+:
-- redis.acl_check_cmd; 6.2: the XDEL is tried on an id that does not exist); each write
-- is a pcall, and if the XDEL is refused the replayed entry is removed again.
-- Errors: 'REPLAY unchanged: <why>' or 'REPLAY partial: <what stayed>: <why>'.
local function refused(reply)
  return type(reply) == 'table' and reply.err ~= nil
end
local function fail(state, why)
  return redis.error_reply('REPLAY ' .. state .. ': ' .. why)
end

if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then
  return false
end
if #ARGV < 4 then
  return redis.error_reply('ERR dead letter ' .. ARGV[1] .. ' has no original fields to replay')
end
local xadd = {'XADD', KEYS[2], '*'}
for i = 3, #ARGV do
  xadd[#xadd + 1] = ARGV[i]
end
if redis.acl_check_cmd then
  local writes = {{'XGROUP', 'CREATE', KEYS[2], ARGV[2], '0', 'MKSTREAM'}, xadd, {'XDEL', KEYS[1], ARGV[1]}}
  for _, command in ipairs(writes) do
    if not redis.acl_check_cmd(unpack(command)) then
      local name = command[1] == 'XGROUP' and 'XGROUP CREATE' or command[1]
      return fail('unchanged', name .. ' refused: NOPERM this user may not run it')
    end
  end
else  -- Redis 6.2: try the XDEL where it changes nothing (no such id)
  local probe = redis.pcall('XDEL', KEYS[1], '0-1')
  if refused(probe) then
    return fail('unchanged', 'XDEL refused: ' .. probe.err)
  end
end
local created = redis.pcall('XGROUP', 'CREATE', KEYS[2], ARGV[2], '0', 'MKSTREAM')
if refused(created) and string.sub(created.err, 1, 9) ~= 'BUSYGROUP' then
  return fail('unchanged', 'XGROUP CREATE refused: ' .. created.err)
end
local id = redis.pcall(unpack(xadd))
if refused(id) then
  return fail('unchanged', 'XADD refused: ' .. id.err)
end
local deleted = redis.pcall('XDEL', KEYS[1], ARGV[1])
if refused(deleted) then
  if refused(redis.pcall('XDEL', KEYS[2], id)) then
    return fail('partial', 'replayed as ' .. id .. ' in ' .. KEYS[2] .. ' and still in ' .. KEYS[1] .. ': XDEL refused: ' .. deleted.err)
  end
  return fail('unchanged', 'XDEL refused: ' .. deleted.err)
end
return id
