-- Retry: re-run the analysis that holds the release, or restart an aborted
-- release at step 1, by a new value of the annotation sluice.dev/retry,
-- which sluice-controller acts on once.
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
  error("cannot retry rollout " .. obj.metadata.name .. ": " .. why, 0)
end
if st.phase ~= "Progressing" then
  refuse("no release is in progress")
end
local notStepping = {
  Initializing = "the release is starting: try again in a moment",
  Finalising = "the release is finalising: nothing is left to retry",
  Cancelling = "the release is being cancelled: nothing is left to retry",
}
if notStepping[reason] ~= nil then
  refuse(notStepping[reason])
end
if hold ~= "Aborted" then
  if paused then
    refuse("the release is paused (spec.strategy.paused): resume it first")
  end
  local analysisHold = hold == "AnalysisInconclusive" or hold == "AnalysisError" or hold == "AnalysisFailedPaused"
  if not analysisHold then
    refuse("retry re-runs an analysis that holds the release or restarts an aborted release, and this release is neither (it waits for " .. tostring(hold) .. ")")
  end
end
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["sluice.dev/retry"] = os.date("!%Y-%m-%dT%XZ")
return obj
