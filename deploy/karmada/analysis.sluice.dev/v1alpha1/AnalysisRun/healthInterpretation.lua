-- An AnalysisRun is healthy while it measures and once it passed; a
-- verdict of Failed, Error or Inconclusive is unhealthy.
function InterpretHealth(observedObj)
  local st = observedObj.status
  if st == nil then
    return true
  end
  return st.phase ~= "Failed" and st.phase ~= "Error" and st.phase ~= "Inconclusive"
end
