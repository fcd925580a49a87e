-- Built-in script for Istio VirtualService (networking.istio.io).
-- Input: obj = {data = {spec, labels, annotations}, canaryWeight, stableWeight,
--   matches, canaryService, stableService, requestHeaderModifier}; data is always
--   the VirtualService as it was before the release.
-- Output: {spec, labels, annotations}.
--   * weight: each http/tcp/tls route without match that sends to the stable
--     host keeps w0*stableWeight/100 of its weight on stable and gives the rest
--     to a copy of the destination pointing at the canary;
--   * matches: one http route at the top sends matching requests to the canary,
--     with requestHeaderModifier as its request headers.
-- When the canary Service is the stable one (disableGenerateCanaryService),
-- the canary destination is the stable host with subset "canary" (see the
-- DestinationRule script).

local spec = obj.data.spec or {}
local stable = obj.stableService
local canary = obj.canaryService

local function isStable(dest)
  if dest == nil or dest.host == nil then return false end
  local h = dest.host
  return h == stable or string.sub(h, 1, #stable + 1) == stable .. "."
end

local function copy(t)
  if type(t) ~= "table" then return t end
  local c = {}
  for k, v in pairs(t) do c[k] = copy(v) end
  return c
end

-- canaryOf keeps the stable destination's port and domain suffix
-- (echoserver.ns.svc.cluster.local -> echoserver-canary.ns.svc.cluster.local);
-- a stable subset names pods of the stable host, so the canary host drops it.
local function canaryOf(dest)
  local c = copy(dest)
  if canary == stable then
    c.subset = "canary"
  else
    c.host = canary .. string.sub(dest.host, #stable + 1)
    c.subset = nil
  end
  return c
end

local function requestHeaders(m)
  if m == nil then return nil end
  local r = {}
  if m.set then
    r.set = {}
    for _, h in ipairs(m.set) do r.set[h.name] = h.value end
  end
  if m.add then
    r.add = {}
    for _, h in ipairs(m.add) do r.add[h.name] = h.value end
  end
  if m.remove then r.remove = copy(m.remove) end
  return {request = r}
end

local function hasMatch(route)
  return route.match ~= nil and #route.match > 0
end

-- Weights.
if obj.canaryWeight >= 0 then
  for _, kind in ipairs({"http", "tcp", "tls"}) do
    for _, route in ipairs(spec[kind] or {}) do
      if not hasMatch(route) and route.route then
        local out = {}
        local canaries = {}
        for _, d in ipairs(route.route) do
          if isStable(d.destination) then
            local w0 = d.weight
            if w0 == nil then w0 = 100 end
            local s = math.floor(w0 * obj.stableWeight / 100)
            local c = copy(d)
            c.destination = canaryOf(d.destination)
            c.weight = w0 - s
            if kind == "http" and obj.requestHeaderModifier then
              c.headers = requestHeaders(obj.requestHeaderModifier)
            end
            d.weight = s
            table.insert(canaries, c)
          end
          table.insert(out, d)
        end
        for _, c in ipairs(canaries) do table.insert(out, c) end
        route.route = out
      end
    end
  end
end

-- Matches.
local function stringMatch(kind, value)
  if kind == "RegularExpression" then return {regex = value} end
  return {exact = value}
end

local pathKinds = {Exact = "exact", PathPrefix = "prefix", RegularExpression = "regex"}

if obj.matches and #obj.matches > 0 then
  local target = nil
  for _, route in ipairs(spec.http or {}) do
    for _, d in ipairs(route.route or {}) do
      if target == nil and isStable(d.destination) then target = d.destination end
    end
  end
  if target == nil then
    error("no http route of the VirtualService sends to the stable service " .. stable)
  end
  local conditions = {}
  for _, m in ipairs(obj.matches) do
    local c = {}
    for _, h in ipairs(m.headers or {}) do
      c.headers = c.headers or {}
      c.headers[string.lower(h.name)] = stringMatch(h.type, h.value)
    end
    for _, q in ipairs(m.queryParams or {}) do
      c.queryParams = c.queryParams or {}
      c.queryParams[q.name] = stringMatch(q.type, q.value)
    end
    if m.path then
      c.uri = {[pathKinds[m.path.type or "PathPrefix"] or "prefix"] = m.path.value or "/"}
    end
    table.insert(conditions, c)
  end
  local route = {match = conditions, route = {{destination = canaryOf(target)}}}
  route.headers = requestHeaders(obj.requestHeaderModifier)
  spec.http = spec.http or {}
  table.insert(spec.http, 1, route)
end

return {spec = spec, labels = obj.data.labels, annotations = obj.data.annotations}
