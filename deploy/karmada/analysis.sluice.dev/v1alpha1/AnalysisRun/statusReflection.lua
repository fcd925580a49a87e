-- The hub keeps a member's AnalysisRun status whole: its verdict, message
-- and each metric's measurements (at most ten each).
function ReflectStatus(observedObj)
  if observedObj == nil or observedObj.status == nil then
    return {}
  end
  return observedObj.status
end
