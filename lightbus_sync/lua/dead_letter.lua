-- Move one entry to the dead-letter stream and ack it, atomically.
-- KEYS[1] stream, KEYS[2] dead-letter stream ({<stream>}:dead), KEYS[3] the attempt
-- counters ({<stream>}:attempts; all three in the stream's cluster slot)
-- ARGV[1] group, ARGV[2] entry id, ARGV[3] dead-letter MAXLEN (0 = no trim),
-- ARGV[4..] field, value, field, value... of the dead-letter entry
-- Returns the dead-letter entry id.
local fields = {}
for i = 4, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
local id
if tonumber(ARGV[3]) > 0 then
  id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(fields))
else
  id = redis.call('XADD', KEYS[2], '*', unpack(fields))
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[1] .. ' ' .. ARGV[2])
return id
