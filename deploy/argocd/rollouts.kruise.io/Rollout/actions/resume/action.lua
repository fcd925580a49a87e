-- Resume: let a paused release go on (spec.strategy.paused: false).
if obj.spec.strategy.paused ~= true then
  error("cannot resume rollout " .. obj.metadata.name .. ": it is not paused (spec.strategy.paused is false)", 0)
end
obj.spec.strategy.paused = false
return obj
