-- The AnalysisTemplates and ClusterAnalysisTemplates a Rollout's analysis
-- names (each step's and the whole release's), so that a PropagationPolicy
-- with propagateDeps sends them wherever the Rollout goes.
function GetDependencies(desiredObj)
  local refs = {}
  local seen = {}
  local strategy = desiredObj.spec.strategy
  if strategy == nil then
    return refs
  end
  local function add(analysis)
    if analysis == nil or analysis.templates == nil then
      return
    end
    for _, t in ipairs(analysis.templates) do
      local ref = { apiVersion = "analysis.sluice.dev/v1alpha1", name = t.templateName }
      if t.clusterScope == true then
        ref.kind = "ClusterAnalysisTemplate"
      else
        ref.kind = "AnalysisTemplate"
        ref.namespace = desiredObj.metadata.namespace
      end
      local key = ref.kind .. "/" .. ref.name
      if not seen[key] then
        seen[key] = true
        refs[#refs + 1] = ref
      end
    end
  end
  add(strategy.analysis)
  local plan = strategy.canary or strategy.blueGreen
  if plan ~= nil and plan.steps ~= nil then
    for _, step in ipairs(plan.steps) do
      add(step.analysis)
    end
  end
  return refs
end
