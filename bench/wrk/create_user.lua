-- POST /api/users with an e-mail address unique to this run, thread and request.
-- Usage: wrk -s create_user.lua URL -- RUN_NONCE
local counter = 0
local threads = 0
local headers = {["Content-Type"] = "application/json"}

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  nonce = args[1] or tostring(os.time())
end

function request()
  counter = counter + 1
  local body = string.format('{"name":"Bench User","email":"b%s-%d-%d@example.com"}',
                             nonce, tid, counter)
  return wrk.format("POST", "/api/users", headers, body)
end
