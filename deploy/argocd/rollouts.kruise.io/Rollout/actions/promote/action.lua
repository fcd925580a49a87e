-- Promote (full): release the new version to all now, skipping the
-- remaining steps and analyses (recorded as an override), by a new value of
-- the annotation sluice.dev/promote, which sluice-controller acts on once. A
-- release paused by spec is resumed in the same patch, so that the
-- promotion acts now.
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
  error("cannot promote rollout " .. obj.metadata.name .. ": " .. why, 0)
end
if st.phase ~= "Progressing" then
  refuse("no release is in progress")
end
local notStepping = {
  Initializing = "the release is starting: try again in a moment",
  Finalising = "the release is finalising: nothing is left to promote",
  Cancelling = "the release is being cancelled: nothing is left to promote",
}
if notStepping[reason] ~= nil then
  refuse(notStepping[reason])
end
if hold == "Aborted" then
  refuse("the release is aborted: to release this version anyway, retry it and promote it while it runs")
end
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["sluice.dev/promote"] = os.date("!%Y-%m-%dT%XZ")
if paused then
  obj.spec.strategy.paused = false
end
return obj
