-- Which of Sluice's overrides the Rollout's state allows now: the rules of
-- `kubectl sluice` (docs/release.md, Overrides), read from the release state
-- Sluice writes as data. Each action checks again when it runs.
local actions = {}
local st = obj.status or {}
local paused = obj.spec.strategy ~= nil and obj.spec.strategy.paused == true

local reason = nil
for _, c in ipairs(st.conditions or {}) do
  if c.type == "Progressing" then
    reason = c.reason
  end
end
local hold = nil
if st.release ~= nil and st.release.hold ~= nil then
  hold = st.release.hold.reason
end

local progressing = st.phase == "Progressing"
local aborted = progressing and hold == "Aborted"
-- Going through its steps: not starting, finalising or being cancelled.
local stepping = progressing and reason ~= "Initializing" and reason ~= "Finalising" and reason ~= "Cancelling"
local analysisHold = hold == "AnalysisInconclusive" or hold == "AnalysisError" or hold == "AnalysisFailedPaused"
local approvable = hold == "WaitingForApproval" or hold == "TimedPause" or analysisHold

actions["approve"] = {
  ["displayName"] = "Approve",
  ["iconClass"] = "fa fa-fw fa-check",
  ["disabled"] = not (stepping and not paused and approvable),
}
actions["pause"] = {
  ["displayName"] = "Pause",
  ["iconClass"] = "fa fa-fw fa-pause",
  ["disabled"] = not (stepping and not paused and not aborted),
}
actions["resume"] = {
  ["displayName"] = "Resume",
  ["iconClass"] = "fa fa-fw fa-play",
  ["disabled"] = not paused,
}
actions["abort"] = {
  ["displayName"] = "Abort",
  ["iconClass"] = "fa fa-fw fa-ban",
  ["disabled"] = not (stepping and not aborted),
}
actions["retry"] = {
  ["displayName"] = "Retry",
  ["iconClass"] = "fa fa-fw fa-redo",
  ["disabled"] = not (aborted or (stepping and not paused and analysisHold)),
}
actions["promote"] = {
  ["displayName"] = "Promote (full)",
  ["iconClass"] = "fa fa-fw fa-forward",
  ["disabled"] = not (stepping and not aborted),
}
return actions
