-- Abort: roll back now (traffic to stable, the new pods scaled to zero, the
-- workload held at its stable revision), by a new value of the annotation
-- sluice.dev/abort, which sluice-controller acts on once. A release paused by
-- spec is resumed in the same patch, so that the abort acts now.
local os = require("os")
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
  error("cannot abort rollout " .. obj.metadata.name .. ": " .. why, 0)
end
if st.phase ~= "Progressing" then
  refuse("no release is in progress")
end
local notStepping = {
  Initializing = "the release is starting: try again in a moment",
  Finalising = "the release is finalising: nothing is left to abort",
  Cancelling = "the release is being cancelled: nothing is left to abort",
}
if notStepping[reason] ~= nil then
  refuse(notStepping[reason])
end
if hold == "Aborted" then
  refuse("it is already aborted: retry it, or go back to the stable revision")
end
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["sluice.dev/abort"] = os.date("!%Y-%m-%dT%XZ")
if paused then
  obj.spec.strategy.paused = false
end
return obj
