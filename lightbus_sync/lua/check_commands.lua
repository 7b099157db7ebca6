-- Which of the given commands may this user not run? (What ACL DRYRUN tells, for the
-- calling user, without the @admin permission DRYRUN needs.) Redis 7+ only.
-- ARGV: n1, word1..wordn1, n2, word1..wordn2, ...: each command with its arguments (key
-- names included: ACL key patterns apply), preceded by its word count.
-- Returns the 1-based indexes of the refused commands.
local refused = {}
local i, index = 1, 0
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  local command = {}
  for j = i + 1, i + n do
    command[#command + 1] = ARGV[j]
  end
  index = index + 1
  local ok, allowed = pcall(redis.acl_check_cmd, unpack(command))
  if not ok or not allowed then
    refused[#refused + 1] = index
  end
  i = i + n + 1
end
return refused
