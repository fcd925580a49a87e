-- The hub's Rollout shows the member that most needs attention: a failed
-- release first (rolled back, aborted, past its progress deadline), then one
-- that waits for a person, then one in progress, then, at rest, the one whose
-- last release ended worst. Its status is copied as is, so the hub reads like
-- a Rollout (phase, step, hold, traffic, last release, conditions); the
-- message names that member and sums up the others. observedGeneration is
-- the hub's generation once every member has observed it. Per-member
-- statuses stay in the ResourceBinding (status.aggregatedStatus).
local needsPerson = {
  WaitingForApproval = true, PausedBySpec = true, AnalysisInconclusive = true, AnalysisError = true,
  AnalysisFailedPaused = true, AnalysisNotStarted = true, NewRevisionRefused = true,
}
local outcomeRank = { RolledBack = 4, Aborted = 4, Cancelled = 2, Promoted = 1, Completed = 1 }

local function holdOf(st)
  if st.release ~= nil and st.release.hold ~= nil then
    return st.release.hold.reason
  end
  return nil
end

local function urgency(st)
  if st == nil or st.phase == nil then
    return 0
  end
  if st.phase == "Progressing" then
    local hold = holdOf(st)
    if hold == "Aborted" or hold == "ProgressDeadlineExceeded" then
      return 8
    end
    if needsPerson[hold] then
      return 7
    end
    return 6
  end
  if st.phase ~= "Healthy" and st.phase ~= "Disabled" then
    return 6
  end
  if st.lastRelease ~= nil and outcomeRank[st.lastRelease.outcome] ~= nil then
    return 1 + outcomeRank[st.lastRelease.outcome]
  end
  return 1
end

local function brief(st)
  if st == nil or st.phase == nil then
    return "no status yet"
  end
  local s = st.phase
  local hold = holdOf(st)
  if st.phase == "Progressing" then
    s = s .. " step " .. tostring(st.currentStepIndex)
    if hold ~= nil then
      s = s .. " " .. hold
    end
  elseif st.lastRelease ~= nil then
    s = s .. " (last release " .. tostring(st.lastRelease.outcome) .. ")"
  end
  return s
end

function AggregateStatus(desiredObj, statusItems)
  if statusItems == nil then
    return desiredObj
  end
  local generation = desiredObj.metadata.generation
  local lead = nil
  local leadUrgency = -1
  local observed = 0
  for i = 1, #statusItems do
    local item = statusItems[i]
    local u = urgency(item.status)
    if u > leadUrgency then
      lead, leadUrgency = item, u
    end
    local st = item.status
    if st ~= nil and st.resourceTemplateGeneration == generation and st.generation ~= nil and st.generation == st.observedGeneration then
      observed = observed + 1
    end
  end
  if lead == nil or lead.status == nil or lead.status.phase == nil then
    return desiredObj
  end

  local from = lead.status
  local status = {}
  status.phase = from.phase
  status.currentStepIndex = from.currentStepIndex
  status.currentStepState = from.currentStepState
  status.canaryStatus = from.canaryStatus
  status.blueGreenStatus = from.blueGreenStatus
  status.conditions = from.conditions
  status.release = from.release
  status.lastRelease = from.lastRelease
  status.analysis = from.analysis
  if observed == #statusItems then
    status.observedGeneration = generation
  elseif desiredObj.status ~= nil then
    status.observedGeneration = desiredObj.status.observedGeneration
  end

  local message = lead.clusterName .. ": " .. (from.message or from.phase)
  for i = 1, #statusItems do
    local item = statusItems[i]
    if item ~= lead then
      message = message .. "; " .. item.clusterName .. ": " .. brief(item.status)
    end
  end
  status.message = message
  desiredObj.status = status
  return desiredObj
end
