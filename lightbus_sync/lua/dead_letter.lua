-- Move one entry to the dead-letter stream and ack it, atomically: everything or nothing.
-- KEYS[1] stream, KEYS[2] dead-letter stream ({<stream>}:dead), KEYS[3] the attempt
-- counters ({<stream>}:attempts; all three in the stream's cluster slot)
-- ARGV[1] group, ARGV[2] entry id, ARGV[3] dead-letter MAXLEN (0 = no trim),
-- ARGV[4..] field, value, field, value... of the dead-letter entry
-- Returns the dead-letter entry id.
-- Redis runs a script to the end even when one command fails, without rolling back, so:
-- every write is first checked against the user's ACL (Redis 7+: redis.acl_check_cmd; 6.2:
-- the later writes are tried where they change nothing), and nothing is written if one is
-- refused. Then each write is a pcall, and a refused one (out of memory...) undoes the
-- writes before it (XADD by XDEL, HDEL by HSET), the XACK, which cannot be undone, last.
-- Errors: 'DEADLETTER unchanged: <why>' (nothing changed: the entry is still pending) or
-- 'DEADLETTER partial: <what stayed>: <why>' (an undo was refused too).
local counter = ARGV[1] .. ' ' .. ARGV[2]
local xadd = {'XADD', KEYS[2]}
if tonumber(ARGV[3]) > 0 then
  for _, word in ipairs({'MAXLEN', '~', ARGV[3]}) do xadd[#xadd + 1] = word end
end
xadd[#xadd + 1] = '*'
for i = 4, #ARGV do
  xadd[#xadd + 1] = ARGV[i]
end
local writes = {xadd, {'HDEL', KEYS[3], counter}, {'XACK', KEYS[1], ARGV[1], ARGV[2]}}

local function refused(reply)
  return type(reply) == 'table' and reply.err ~= nil
end
local function fail(state, why)
  return redis.error_reply('DEADLETTER ' .. state .. ': ' .. why)
end

if redis.acl_check_cmd then
  for _, command in ipairs(writes) do
    if not redis.acl_check_cmd(unpack(command)) then
      return fail('unchanged', command[1] .. ' refused: NOPERM this user may not run it on ' .. command[2])
    end
  end
else  -- Redis 6.2: try the later writes where they change nothing (no such field, no such id)
  for _, probe in ipairs({{'HDEL', KEYS[3], '\0probe'}, {'XACK', KEYS[1], ARGV[1], '0-1'}}) do
    local reply = redis.pcall(unpack(probe))
    if refused(reply) then
      return fail('unchanged', probe[1] .. ' refused: ' .. reply.err)
    end
  end
end

local id = redis.pcall(unpack(xadd))
if refused(id) then
  return fail('unchanged', 'XADD refused: ' .. id.err)
end
local old_count = redis.pcall('HGET', KEYS[3], counter)
if refused(old_count) then
  old_count = false
end
local deleted = redis.pcall('HDEL', KEYS[3], counter)
if refused(deleted) then
  if refused(redis.pcall('XDEL', KEYS[2], id)) then
    return fail('partial', 'dead letter ' .. id .. ' stays in ' .. KEYS[2] .. ': HDEL refused: ' .. deleted.err)
  end
  return fail('unchanged', 'HDEL refused: ' .. deleted.err)
end
local acked = redis.pcall('XACK', KEYS[1], ARGV[1], ARGV[2])
if refused(acked) then
  local left = {}
  if refused(redis.pcall('XDEL', KEYS[2], id)) then
    left[#left + 1] = 'dead letter ' .. id .. ' stays in ' .. KEYS[2]
  end
  if old_count and refused(redis.pcall('HSET', KEYS[3], counter, old_count)) then
    left[#left + 1] = 'attempt counter ' .. counter .. ' deleted'
  end
  if #left > 0 then
    return fail('partial', table.concat(left, ', ') .. ': XACK refused: ' .. acked.err)
  end
  return fail('unchanged', 'XACK refused: ' .. acked.err)
end
return id
