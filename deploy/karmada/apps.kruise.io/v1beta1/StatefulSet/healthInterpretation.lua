-- Karmada's built-in rule for Advanced StatefulSets, which a customization
-- replaces: healthy once the controller observed the spec and every
-- replica is updated and available. While a Sluice release holds the
-- workload (the annotation rollouts.kruise.io/in-progressing), only a
-- batch of the replicas is updated on purpose, for as long as the release
-- waits: it is healthy when every replica is available, whatever its
-- revision. Without this a release waiting for approval reads Unhealthy,
-- and application failover would move the workload away mid-release.
function InterpretHealth(observedObj)
  local st = observedObj.status
  if st == nil or st.observedGeneration ~= observedObj.metadata.generation then
    return false
  end
  local available = st.availableReplicas or 0
  local ann = observedObj.metadata.annotations
  if ann ~= nil and ann["rollouts.kruise.io/in-progressing"] ~= nil then
    return available >= (observedObj.spec.replicas or 1)
  end
  local updated = st.updatedReplicas or 0
  if observedObj.spec.replicas ~= nil and updated < observedObj.spec.replicas then
    return false
  end
  return available >= updated
end
