-- The hub's AnalysisRun carries the verdict over every member: Failed if
-- one failed, else Error, else Inconclusive, else Running or Pending while
-- one still measures, and Successful once all passed. Message, summary and
-- metric results are those of the members with that verdict, by name.
local order = { Failed = 6, Error = 5, Inconclusive = 4, Running = 3, Pending = 2, Successful = 1 }
local completed = { Failed = true, Error = true, Inconclusive = true, Successful = true }

function AggregateStatus(desiredObj, statusItems)
  if statusItems == nil then
    return desiredObj
  end
  local phase = nil
  local rank = 0
  for i = 1, #statusItems do
    local st = statusItems[i].status
    local p = "Pending"
    if st ~= nil and st.phase ~= nil and order[st.phase] ~= nil then
      p = st.phase
    end
    if order[p] > rank then
      phase, rank = p, order[p]
    end
  end
  if phase == nil then
    return desiredObj
  end
  local status = { phase = phase }
  local message, summary = nil, nil
  local startedAt, completedAt = nil, nil
  local allCompleted = true
  for i = 1, #statusItems do
    local item = statusItems[i]
    local st = item.status or {}
    local p = st.phase or "Pending"
    if not completed[p] then
      allCompleted = false
    end
    if st.startedAt ~= nil and (startedAt == nil or st.startedAt < startedAt) then
      startedAt = st.startedAt
    end
    if st.completedAt ~= nil and (completedAt == nil or st.completedAt > completedAt) then
      completedAt = st.completedAt
    end
    if st.summary ~= nil then
      local s = item.clusterName .. ": " .. st.summary
      if summary == nil then summary = s else summary = summary .. "; " .. s end
    end
    if p == phase then
      if status.metricResults == nil then
        status.metricResults = st.metricResults
      end
      if st.message ~= nil and st.message ~= "" then
        local m = item.clusterName .. ": " .. st.message
        if message == nil then message = m else message = message .. "; " .. m end
      end
    end
  end
  status.message = message
  status.summary = summary
  status.startedAt = startedAt
  if allCompleted then
    status.completedAt = completedAt
  end
  desiredObj.status = status
  return desiredObj
end
