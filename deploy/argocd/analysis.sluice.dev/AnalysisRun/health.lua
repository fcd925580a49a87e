-- Argo CD health of a Sluice AnalysisRun (analysis.sluice.dev): its verdict.
--   Progressing  Pending or Running (measuring)
--   Healthy      Successful
--   Degraded     Failed, or Error (the provider could not be queried)
--   Suspended    Inconclusive: the release it judges waits for a person
--                (approve, retry or abort the Rollout)
-- AnalysisRuns are created by sluice-controller and owned by their Rollout,
-- so they show in an Application's tree without counting towards its
-- health. Runs without Lua's standard libraries.
local hs = {}
local st = obj.status
local phase = nil
if st ~= nil then
  phase = st.phase
end

local function withMessage(default)
  if st ~= nil and st.message ~= nil and st.message ~= "" then
    return st.message
  end
  return default
end

if phase == "Successful" then
  hs.status = "Healthy"
  hs.message = withMessage("Analysis passed")
elseif phase == "Failed" then
  hs.status = "Degraded"
  hs.message = withMessage("Analysis failed")
elseif phase == "Error" then
  hs.status = "Degraded"
  hs.message = withMessage("Analysis could not measure")
elseif phase == "Inconclusive" then
  hs.status = "Suspended"
  hs.message = withMessage("Analysis was inconclusive")
else
  hs.status = "Progressing"
  hs.message = withMessage("Analysis is measuring")
end
return hs
