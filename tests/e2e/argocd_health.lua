-- argocd_health.lua - runs an Argo CD health.lua on test cases the way Argo
-- CD runs a health check from argocd-cm (util/lua/lua.go), under Lua 5.1.
--
--   lua5.1 argocd_health.lua HEALTH_LUA CASES_LUA
--
-- CASES_LUA is the chunk tests/e2e/argocd_cases.py makes from
-- health_test.yaml. For each case, in a fresh environment:
--   - the globals are those of Argo CD's VM for an argocd-cm script: the
--     base library, table, and the safe part of os (clock, date, difftime,
--     time); no string, math, io or debug, and strings have no methods;
--   - obj is the case's object; the script runs as one chunk, stopped
--     after a bounded number of instructions (Argo CD: 1 s);
--   - the returned value must be a table whose status and message are
--     strings or nil; a status Argo CD does not know becomes Unknown,
--     "Lua returned an invalid health status";
--   - status and message must equal healthStatus in health_test.yaml.
-- Prints "ok - <inputPath>: <status>: <message>" or "not ok - ..." with
-- "#   " detail lines, one per case; counting is left to the caller.

local health_path, cases_path = arg[1], arg[2]
if not health_path or not cases_path then
  io.stderr:write("usage: lua5.1 argocd_health.lua HEALTH_LUA CASES_LUA\n")
  os.exit(2)
end

local cases = dofile(cases_path)
local f = assert(io.open(health_path, "rb"))
local source = f:read("*a")
f:close()

local valid = { Unknown = true, Progressing = true, Suspended = true,
                Healthy = true, Degraded = true, Missing = true }

local base_names = { "assert", "collectgarbage", "dofile", "error", "getfenv",
  "getmetatable", "ipairs", "load", "loadfile", "loadstring", "module", "next",
  "pairs", "pcall", "print", "rawequal", "rawget", "rawset", "require",
  "select", "setfenv", "setmetatable", "tonumber", "tostring", "type",
  "unpack", "xpcall", "_VERSION" }

local function copy(v)
  if type(v) ~= "table" then
    return v
  end
  local t = {}
  for k, x in pairs(v) do
    t[k] = copy(x)
  end
  return t
end

local function argo_env(obj)
  local env = {}
  for _, name in ipairs(base_names) do
    env[name] = _G[name]
  end
  env._G = env
  env.table = copy(table)
  env.os = { clock = os.clock, date = os.date, difftime = os.difftime, time = os.time }
  env.obj = copy(obj)
  return env
end

-- Runs the script on obj; returns status, message or nil, error.
local function run(obj)
  local chunk, err = loadstring(source, "=health.lua")
  if not chunk then
    return nil, err
  end
  setfenv(chunk, argo_env(obj))
  local smt = getmetatable("")
  local string_index = smt.__index
  smt.__index = nil
  debug.sethook(function() error("health.lua ran too long", 2) end, "", 10000000)
  local ok, hs = pcall(chunk)
  debug.sethook()
  smt.__index = string_index
  if not ok then
    return nil, tostring(hs)
  end
  if type(hs) ~= "table" then
    return nil, "expect table output from Lua script, not " .. type(hs)
  end
  if hs.status ~= nil and type(hs.status) ~= "string" then
    return nil, "status is a " .. type(hs.status) .. ", not a string"
  end
  if hs.message ~= nil and type(hs.message) ~= "string" then
    return nil, "message is a " .. type(hs.message) .. ", not a string"
  end
  if not valid[hs.status or ""] then
    return "Unknown", "Lua returned an invalid health status"
  end
  return hs.status, hs.message or ""
end

for _, c in ipairs(cases) do
  local status, message = run(c.obj)
  if status == nil then
    print("not ok - " .. c.input .. ": health.lua failed")
    print("#   error:    " .. message)
    print("#   expected: " .. c.status .. ": " .. c.message)
  elseif status == c.status and message == c.message then
    print("ok - " .. c.input .. ": " .. status .. ": " .. message)
  else
    print("not ok - " .. c.input)
    print("#   expected: " .. c.status .. ": " .. c.message)
    print("#   actual:   " .. status .. ": " .. message)
  end
end
