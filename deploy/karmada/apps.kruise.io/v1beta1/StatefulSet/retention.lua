-- Keeps on a member's Advanced StatefulSet (OpenKruise) the partition
-- Sluice holds it to while a release is in progress (the annotation
-- rollouts.kruise.io/in-progressing on the member's object). Without it the
-- hub's next sync would set the partition of its manifest (usually none)
-- and release every pod at once (openkruise/rollouts#330).
function Retain(desiredObj, observedObj)
  local ann = observedObj.metadata.annotations
  if ann == nil or ann["rollouts.kruise.io/in-progressing"] == nil then
    return desiredObj
  end
  local observed = observedObj.spec.updateStrategy
  if observed == nil or observed.rollingUpdate == nil or observed.rollingUpdate.partition == nil then
    return desiredObj
  end
  if desiredObj.spec.updateStrategy == nil then
    desiredObj.spec.updateStrategy = { type = observed.type }
  end
  if desiredObj.spec.updateStrategy.rollingUpdate == nil then
    desiredObj.spec.updateStrategy.rollingUpdate = {}
  end
  desiredObj.spec.updateStrategy.rollingUpdate.partition = observed.rollingUpdate.partition
  return desiredObj
end
