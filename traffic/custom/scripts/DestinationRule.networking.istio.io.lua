-- Built-in script for Istio DestinationRule (networking.istio.io): adds the
-- subset "canary" that the VirtualService script routes to when the canary
-- Service is the stable one. Canary pods carry istio.service.tag=gray
-- (patchPodTemplateMetadata), as in Kruise.
local spec = obj.data.spec or {}
spec.subsets = spec.subsets or {}
local found = false
for _, s in ipairs(spec.subsets) do
  if s.name == "canary" then found = true end
end
if not found then
  table.insert(spec.subsets, {name = "canary", labels = {["istio.service.tag"] = "gray"}})
end
return {spec = spec, labels = obj.data.labels, annotations = obj.data.annotations}
