-- Argo CD health of a Rollout served by Sluice (rollouts.kruise.io, v1beta1
-- or v1alpha1). It reads the release state Sluice writes as data
-- (docs/release.md), never the message text:
--   Healthy      no release in progress (phase Healthy or Disabled): what the
--                manifests ask for runs
--   Progressing  a release that moves by itself (a batch coming up, traffic
--                grace, an analysis measuring, a timed pause, finalising), or a
--                spec not yet observed by sluice-controller
--   Suspended    a release that waits for a person: approval, paused by
--                spec, an analysis verdict held for a decision (Error,
--                Inconclusive, Failed with policy Pause), an analysis that
--                cannot start, a new version refused mid blue-green release
--   Degraded     a release that was rolled back by its analysis or aborted
--                and is held at the stable revision, or whose batch missed
--                its progress deadline
-- Runs without Lua's standard libraries (Argo CD's default for argocd-cm).
local hs = {}
local st = obj.status

if st == nil or st.phase == nil or st.phase == "" then
  hs.status = "Progressing"
  hs.message = "Waiting for sluice-controller to observe the Rollout"
  return hs
end
if st.observedGeneration == nil or st.observedGeneration ~= obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for sluice-controller to observe generation " .. tostring(obj.metadata.generation)
  return hs
end

local function withMessage(prefix)
  if st.message ~= nil and st.message ~= "" then
    return prefix .. ": " .. st.message
  end
  return prefix
end

if st.phase == "Healthy" then
  hs.status = "Healthy"
  local last = st.lastRelease
  if last == nil then
    hs.message = withMessage("No release yet")
  else
    hs.message = withMessage("Last release " .. last.outcome .. " (revision " .. tostring(last.revision) .. ")")
  end
  return hs
end
if st.phase == "Disabled" then
  hs.status = "Healthy"
  hs.message = withMessage("Disabled: the workload rolls out by itself")
  return hs
end
if st.phase ~= "Progressing" then
  -- Initial, Terminating (deleted: the workload is given back), Disabling.
  hs.status = "Progressing"
  hs.message = withMessage(st.phase)
  return hs
end

local hold = nil
if st.release ~= nil then
  hold = st.release.hold
end
if hold == nil then
  hs.status = "Progressing"
  hs.message = withMessage("Release in progress")
  return hs
end

local reason = hold.reason
if reason == "Aborted" then
  hs.status = "Degraded"
  local how = "Aborted"
  if st.lastRelease ~= nil and st.lastRelease.outcome == "RolledBack" then
    how = "RolledBack"
  end
  hs.message = withMessage(how)
  return hs
end
if reason == "ProgressDeadlineExceeded" then
  hs.status = "Degraded"
  hs.message = withMessage(reason)
  return hs
end

-- HoldReason.NeedsPerson() in api/rollouts/v1beta1/release_status.go, less
-- the two above.
local needsPerson = {
  WaitingForApproval = true,
  PausedBySpec = true,
  AnalysisInconclusive = true,
  AnalysisError = true,
  AnalysisFailedPaused = true,
  AnalysisNotStarted = true,
  NewRevisionRefused = true,
}
if needsPerson[reason] then
  hs.status = "Suspended"
else
  hs.status = "Progressing"
end
hs.message = withMessage(reason)
return hs
