-- Argo CD health check for the kinds of upgrade.tianqing.io: TianqingUpgrade,
-- TianqingTuning, TianqingAccessPointUpgrade and TianqingRestore. They share
-- one status shape (design.md sections 1 and 8): status.phase (Pending,
-- Waiting, Paused, Running, Blocked, Failed, Succeeded), status.message,
-- status.observedGeneration, and the kstatus conditions Ready, Reconciling
-- and Stalled, each with its own observedGeneration.
--
--   Healthy      Ready=True for the current generation (phase Succeeded)
--   Progressing  no status yet; a generation the controller has not seen;
--                Reconciling (phases Pending, Waiting, Running)
--   Suspended    phase Paused (spec.paused: a person resumes it)
--   Degraded     Stalled=True (phases Blocked and Failed: a person must act)
--
-- The message is "<phase> (<reason>): <status.message>", the reason being
-- the deciding condition's (left out when it only repeats the phase). A
-- slow vendor step (reason UpgradeSlow) stays Progressing: slow is not
-- failed.
--
-- Argo CD runs a script from argocd-cm without Lua's string and math
-- libraries (only base, table and a safe os), so nothing here calls them,
-- not even as methods of a string. tests/e2e/test_argocd_health.sh runs
-- health_test.yaml under the same restrictions.

local hs = {}
local status = obj.status
local generation = nil
if obj.metadata ~= nil and type(obj.metadata.generation) == "number" then
  generation = obj.metadata.generation
end

-- True when a generation number g (possibly nil) is older than the object's.
local function stale(g)
  if generation == nil then
    return false
  end
  return type(g) ~= "number" or g < generation
end

-- The condition of this type, or nil; one of an older generation is ignored.
local function condition(t)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == t then
      if c.observedGeneration ~= nil and stale(c.observedGeneration) then
        return nil
      end
      return c
    end
  end
  return nil
end

local function describe(phase, c)
  local m = status.message
  if (m == nil or m == "") and c ~= nil then
    m = c.message
  end
  local text = phase
  if c ~= nil and c.reason ~= nil and c.reason ~= "" and c.reason ~= phase then
    text = text .. " (" .. c.reason .. ")"
  end
  if m ~= nil and m ~= "" then
    text = text .. ": " .. m
  end
  return text
end

if status == nil or (status.phase == nil and status.conditions == nil) then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to report status"
  return hs
end

if stale(status.observedGeneration) then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to observe generation " .. generation
  if type(status.observedGeneration) == "number" then
    hs.message = hs.message .. " (status is of generation " .. status.observedGeneration .. ")"
  end
  return hs
end

local phase = status.phase
if phase == nil or phase == "" then
  phase = "Unknown"
end
local ready = condition("Ready")
local reconciling = condition("Reconciling")
local stalled = condition("Stalled")

if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(phase, stalled)
  return hs
end

if phase == "Paused" then
  hs.status = "Suspended"
  hs.message = describe(phase, ready)
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(phase, ready)
  return hs
end

-- A writer without conditions (or with stale ones): go by the phase alone.
if ready == nil and stalled == nil then
  if phase == "Succeeded" then
    hs.status = "Healthy"
    hs.message = describe(phase, nil)
    return hs
  end
  if phase == "Blocked" or phase == "Failed" then
    hs.status = "Degraded"
    hs.message = describe(phase, nil)
    return hs
  end
end

hs.status = "Progressing"
hs.message = describe(phase, reconciling)
return hs
