-- The tests' harness: one line per test, bounded waits, and a last line exactly
-- "N passed, N failed"; finish() stops the clients and exits non-zero on any failure.
local M = { passed = 0, failed = 0, WAIT = tonumber(vim.env.GANTRY_NVIM_WAIT_MS) or 15000 }

function M.out(line)
  io.stdout:write(line .. '\n')
  io.stdout:flush()
end

function M.test(name, fn)
  local started = vim.uv.hrtime()
  local ok, err = xpcall(fn, debug.traceback)
  local ms = (vim.uv.hrtime() - started) / 1e6
  if ok then
    M.passed = M.passed + 1
    M.out(('ok   %s (%d ms)'):format(name, ms))
  else
    M.failed = M.failed + 1
    M.out(('FAIL %s (%d ms)\n%s'):format(name, ms, tostring(err)))
  end
end

-- Wait (bounded) until cond() returns a true value, and return it; on a timeout, fail with
-- `what` and, when given, seen(): what there was instead.
function M.wait_for(what, cond, ms, seen)
  local last
  local ok = vim.wait(ms or M.WAIT, function()
    local good, value = pcall(cond)
    last = good and value or last
    return good and value and true or false
  end, 20)
  if not ok then
    local saw = seen and ('\n  saw: ' .. tostring(seen())) or ''
    error(('timed out after %d ms waiting for %s%s'):format(ms or M.WAIT, what, saw), 2)
  end
  return last
end

function M.check(cond, msg, ...)
  if not cond then
    error(msg:format(...), 2)
  end
end

-- The server's JSON Schemas (src/lsp_server/contract/schemas, generated from its attrs classes)
-- and a validator for the part of JSON Schema they use, so the fixtures these tests use, what
-- the server sends and what the plugin sends it are checked against what the server speaks.
-- A keyword outside that part is an error: the generator grew, and so must this.
M.SCHEMAS = vim.fs.normalize(vim.g.gantry_test_plugin_dir .. '/../../src/lsp_server/contract/schemas')
local KEYWORDS = {}
for _, k in ipairs({ '$schema', 'title', 'description', 'default', 'format', '$defs', '$ref', 'anyOf', 'type', 'enum',
  'properties', 'required', 'additionalProperties', 'items', 'minItems', 'maxItems' }) do
  KEYWORDS[k] = true
end

local schemas = {}
---@param name string e.g. 'status.json', 'commands/gantry.reviewFile.json'
---@return table? schema nil when there is no such file
function M.schema(name)
  if schemas[name] == nil then
    local path = M.SCHEMAS .. '/' .. name
    schemas[name] = vim.uv.fs_stat(path) and vim.json.decode(table.concat(vim.fn.readfile(path), '\n')) or false
  end
  return schemas[name] or nil
end

-- A decoded table is an object or a list; an empty one may be either (Lua cannot tell).
local function kind(value)
  if value == nil or value == vim.NIL then
    return 'null'
  elseif type(value) == 'number' then
    return math.floor(value) == value and 'integer' or 'number'
  elseif type(value) == 'table' then
    return next(value) == nil and 'empty' or (vim.islist(value) and 'array' or 'object')
  end
  return type(value)
end

local function allows(schema, root, wanted)
  if schema['$ref'] then
    return allows(root['$defs'][schema['$ref']:gsub('^#/%$defs/', '')], root, wanted)
  end
  for _, option in ipairs(schema.anyOf or {}) do
    if allows(option, root, wanted) then
      return true
    end
  end
  local types = type(schema.type) == 'table' and schema.type or { schema.type }
  return vim.tbl_contains(types, wanted)
end

---Where and why `value` does not fit `schema`; empty when it does.
function M.problems(schema, value, root, at, found)
  root, at, found = root or schema, at or '$', found or {}
  for k in pairs(schema) do
    if not KEYWORDS[k] then
      error('schema keyword this validator does not know: ' .. k)
    end
  end
  if schema['$ref'] then
    local before = #found
    M.problems(root['$defs'][schema['$ref']:gsub('^#/%$defs/', '')], value, root, at, found)
    if #found > before then
      return found
    end
  end
  if schema.anyOf then
    local fits = vim.iter(schema.anyOf):any(function(option)
      return #M.problems(option, value, root, at) == 0
    end)
    if not fits then
      found[#found + 1] = ('%s: %s fits none of its types'):format(at, vim.inspect(value))
      return found
    end
  end
  local k = kind(value)
  if schema.type then
    local types = type(schema.type) == 'table' and schema.type or { schema.type }
    local ok = vim.tbl_contains(types, k) or (k == 'integer' and vim.tbl_contains(types, 'number'))
      or (k == 'empty' and (vim.tbl_contains(types, 'object') or vim.tbl_contains(types, 'array')))
    if not ok then
      found[#found + 1] = ('%s: expected %s, got %s'):format(at, table.concat(types, ' or '), k)
      return found
    end
  end
  if schema.enum and not vim.tbl_contains(schema.enum, value) then
    found[#found + 1] = ('%s: expected one of %s, got %s'):format(at, vim.inspect(schema.enum), vim.inspect(value))
    return found
  end
  if k == 'object' or (k == 'empty' and schema.properties) then
    for _, name in ipairs(schema.required or {}) do
      -- Neovim decodes a null in an object as nil: a missing key that may be null is that null.
      local property = (schema.properties or {})[name]
      if value[name] == nil and not (property and allows(property, root, 'null')) then
        found[#found + 1] = ('%s: %s is missing'):format(at, name)
      end
    end
    for name, item in pairs(value) do
      local sub = (schema.properties or {})[name]
      if sub == nil then
        sub = schema.additionalProperties
      end
      if sub == false then
        found[#found + 1] = ('%s: %s is not expected'):format(at, name)
      elseif type(sub) == 'table' then
        M.problems(sub, item, root, at .. '.' .. name, found)
      end
    end
  end
  if k == 'array' or (k == 'empty' and schema.items) then
    if schema.minItems and #value < schema.minItems then
      found[#found + 1] = ('%s: fewer than %d items'):format(at, schema.minItems)
    end
    if schema.maxItems and #value > schema.maxItems then
      found[#found + 1] = ('%s: more than %d items'):format(at, schema.maxItems)
    end
    for i, item in ipairs(value) do
      M.problems(schema.items, item, root, ('%s[%d]'):format(at, i - 1), found)
    end
  end
  return found
end

---Raise an error unless `value` fits the schema `name`.
function M.fits(name, value)
  local schema = M.schema(name)
  M.check(schema, 'no schema %s under %s', name, M.SCHEMAS)
  local found = M.problems(schema, value)
  M.check(#found == 0, '%s: %s', name, table.concat(found, '; '))
  return value
end

function M.finish()
  M.out(('%d passed, %d failed'):format(M.passed, M.failed))
  for _, c in ipairs(vim.lsp.get_clients()) do
    c:stop()
  end
  vim.wait(3000, function()
    return #vim.lsp.get_clients() == 0
  end, 20)
  vim.cmd(M.failed == 0 and 'qall!' or 'cquit! 1')
end

return M
