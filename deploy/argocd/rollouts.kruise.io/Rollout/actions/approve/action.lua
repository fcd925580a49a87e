-- Approve: go on past a step's pause (pause: {} or a timed pause) or an
-- analysis verdict held for a decision, with the status patch
-- `kubectl-kruise rollout approve` sends: currentStepState StepReady in
-- canaryStatus (blueGreenStatus for a blue-green release). Argo CD sends a
-- change of status to the status subresource. It refuses what the release's
-- state does not allow, as discovery.lua and `kubectl sluice` do.
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
  error("cannot approve rollout " .. obj.metadata.name .. ": " .. why, 0)
end
if st.phase ~= "Progressing" then
  refuse("no release is in progress")
end
local notStepping = {
  Initializing = "the release is starting: try again in a moment",
  Finalising = "the release is finalising: nothing is left to approve",
  Cancelling = "the release is being cancelled: nothing is left to approve",
}
if notStepping[reason] ~= nil then
  refuse(notStepping[reason])
end
if hold == "Aborted" then
  refuse("the release is aborted; approving does not resume it: retry it, or go back to the stable revision")
end
if paused then
  refuse("the release is paused (spec.strategy.paused): resume it first")
end
local approvable = {
  WaitingForApproval = true,
  TimedPause = true,
  AnalysisInconclusive = true,
  AnalysisError = true,
  AnalysisFailedPaused = true,
}
if not approvable[hold] then
  refuse("nothing waits for approval (the release waits for " .. tostring(hold) .. ")")
end
local key = "canaryStatus"
if obj.spec.strategy.blueGreen ~= nil then
  key = "blueGreenStatus"
end
if st[key] == nil then
  refuse("status." .. key .. " is not set")
end
st[key].currentStepState = "StepReady"
return obj
