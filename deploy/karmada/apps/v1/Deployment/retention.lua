-- Keeps on a member's Deployment what Sluice set there while a release
-- holds it (the annotation rollouts.kruise.io/in-progressing or
-- batchrelease.rollouts.kruise.io/control-info on the member's object): the
-- pause, the Recreate strategy of a partition-style release (the original
-- is saved in rollouts.kruise.io/deployment-strategy), and, in a blue-green
-- release, the minReadySeconds and progressDeadlineSeconds that keep the
-- old pods (saved in rollouts.kruise.io/original-deployment-strategy).
-- Without it the hub's next sync would unpause the Deployment and release
-- every pod at once (openkruise/rollouts#330). Sluice gives these fields
-- back when the release ends; from then on the hub's values apply again.
--
-- A retention customization replaces Karmada's own for Deployments, so
-- this also keeps its rule: with the label
-- resourcetemplate.karmada.io/retain-replicas=true the member's replicas
-- are kept.
function Retain(desiredObj, observedObj)
  local labels = desiredObj.metadata.labels
  if labels ~= nil and labels["resourcetemplate.karmada.io/retain-replicas"] == "true" and observedObj.spec.replicas ~= nil then
    desiredObj.spec.replicas = observedObj.spec.replicas
  end
  local ann = observedObj.metadata.annotations
  if ann == nil then
    return desiredObj
  end
  if ann["rollouts.kruise.io/in-progressing"] ~= nil or ann["batchrelease.rollouts.kruise.io/control-info"] ~= nil then
    desiredObj.spec.paused = observedObj.spec.paused
    desiredObj.spec.strategy = observedObj.spec.strategy
  end
  if ann["rollouts.kruise.io/original-deployment-strategy"] ~= nil then
    desiredObj.spec.minReadySeconds = observedObj.spec.minReadySeconds
    desiredObj.spec.progressDeadlineSeconds = observedObj.spec.progressDeadlineSeconds
  end
  return desiredObj
end
