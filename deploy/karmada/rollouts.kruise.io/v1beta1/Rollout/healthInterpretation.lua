-- A member's Rollout is healthy unless sluice-controller has not observed
-- its spec yet, or its release failed there: rolled back or aborted and
-- held at the stable revision, or a batch past its progress deadline. A
-- release that waits (for a person, an analysis, a pause) is healthy: it
-- does what it was asked to. Do not let Karmada's application failover act
-- on a Rollout (docs/karmada.md).
function InterpretHealth(observedObj)
  local st = observedObj.status
  if st == nil or st.observedGeneration == nil or st.observedGeneration ~= observedObj.metadata.generation then
    return false
  end
  if st.phase == "Progressing" and st.release ~= nil and st.release.hold ~= nil then
    local reason = st.release.hold.reason
    if reason == "Aborted" or reason == "ProgressDeadlineExceeded" then
      return false
    end
  end
  return true
end
