-- What the hub keeps of a member's Rollout: the whole release state Sluice
-- writes, plus the generations the aggregation needs to tell whether every
-- member has seen the hub's current spec.
function ReflectStatus(observedObj)
  local status = {}
  if observedObj == nil or observedObj.status == nil then
    return status
  end
  local st = observedObj.status
  status.observedGeneration = st.observedGeneration
  status.phase = st.phase
  status.message = st.message
  status.currentStepIndex = st.currentStepIndex
  status.currentStepState = st.currentStepState
  status.canaryStatus = st.canaryStatus
  status.blueGreenStatus = st.blueGreenStatus
  status.conditions = st.conditions
  status.release = st.release
  status.lastRelease = st.lastRelease
  status.analysis = st.analysis
  if observedObj.metadata == nil then
    return status
  end
  status.generation = observedObj.metadata.generation
  if observedObj.metadata.annotations ~= nil then
    status.resourceTemplateGeneration = tonumber(observedObj.metadata.annotations["resourcetemplate.karmada.io/generation"])
  end
  return status
end
