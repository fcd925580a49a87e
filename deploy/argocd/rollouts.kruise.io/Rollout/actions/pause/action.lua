-- Pause: hold the release where it is (spec.strategy.paused: true).
local st = obj.status or {}
local paused = obj.spec.strategy.paused == true
local reason, hold = nil, nil
for _, c in ipairs(st.conditions or {}) do
  if c.type == "Progressing" then
    reason = c.reason
  end
end
if st.release ~= nil and st.release.hold ~= nil then
  hold = st.release.hold.reason
end
local function refuse(why)
  error("cannot pause rollout " .. obj.metadata.name .. ": " .. why, 0)
end
if st.phase ~= "Progressing" then
  refuse("no release is in progress")
end
local notStepping = {
  Initializing = "the release is starting: try again in a moment",
  Finalising = "the release is finalising: nothing is left to pause",
  Cancelling = "the release is being cancelled: nothing is left to pause",
}
if notStepping[reason] ~= nil then
  refuse(notStepping[reason])
end
if hold == "Aborted" then
  refuse("the release is aborted and nothing moves: retry it, or go back to the stable revision")
end
if paused then
  refuse("it is already paused")
end
obj.spec.strategy.paused = true
return obj
