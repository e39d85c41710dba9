--- `:checkhealth gantry`: the server and its version, settings, the store, the remotes.
local M = {}

local health = vim.health

-- Top-level settings and their sub-keys (snake_case; camelCase is accepted too).
local KNOWN = {
  store = true,
  max_file_size_kb = true,
  log_level = true,
  ruff = { enabled = true, path = true, select = true, extend_select = true, ignore = true },
  severity = 'map',
  index = { enabled = true, exclude = true },
  inference = { endpoints = true, privacy = true },
  execution = { gateway = true, local_fallback = true, unsandboxed = true, queue = true, max_concurrency = true },
  testgen = {
    budget_seconds = true,
    reruns = true,
    model_rounds = true,
    model_tokens = true,
    context_budget = true,
    answer_tokens = true,
    gpu_paths = true,
  },
}
local SEVERITIES = { error = true, warning = true, info = true, hint = true }

---@param key string
local function snake(key)
  return (key:gsub('(%l)(%u)', '%1_%2'):gsub('(%d)(%u)', '%1_%2'):lower())
end

---A key that looks like it holds a secret itself (tokenEnv, apiKeyFile, ... only name one).
---@param key string
local function secret(key)
  local k = snake(key)
  if k:match('_env$') or k:match('_file$') then
    return false
  end
  return k:match('token') or k:match('api_key') or k:match('password') or k:match('secret')
end

---Problems in the editor's `settings.gantry`: { level, message }.
---@param settings any
---@return { [1]: 'error'|'warn', [2]: string }[]
function M.validate(settings)
  local problems = {}
  local function add(level, msg)
    problems[#problems + 1] = { level, msg }
  end
  local function walk(value, path)
    if type(value) ~= 'table' then
      return
    end
    for key, item in pairs(value) do
      if type(key) == 'string' and secret(key) then
        add('error', ('%s%s: secrets are never settings; name an environment variable or a file instead'):format(path, key))
      elseif type(item) == 'table' and not vim.islist(item) then
        walk(item, path .. tostring(key) .. '.')
      end
    end
  end
  if settings == nil then
    return problems
  end
  if type(settings) ~= 'table' or (vim.islist(settings) and next(settings) ~= nil) then
    add('error', 'settings.gantry must be a table of settings')
    return problems
  end
  walk(settings, '')
  for key, value in pairs(settings) do
    local name = type(key) == 'string' and snake(key) or tostring(key)
    local known = KNOWN[name]
    if known == nil then
      add('warn', ('unknown setting %q (ignored by the server)'):format(tostring(key)))
    elseif name == 'severity' then
      if type(value) ~= 'table' then
        add('error', 'severity must map rule codes or prefixes to error|warning|info|hint')
      else
        for code, level in pairs(value) do
          if not SEVERITIES[level] then
            add('error', ('severity.%s: %q is not one of error, warning, info, hint'):format(tostring(code), tostring(level)))
          end
        end
      end
    elseif type(known) == 'table' then
      if type(value) ~= 'table' then
        add('error', ('%s must be a table'):format(key))
      else
        for sub in pairs(value) do
          if type(sub) ~= 'string' or not known[snake(sub)] then
            add('warn', ('unknown setting "%s.%s" (ignored by the server)'):format(key, tostring(sub)))
          end
        end
      end
    elseif name == 'max_file_size_kb' and (type(value) ~= 'number' or value <= 0) then
      add('error', 'maxFileSizeKb must be a positive number')
    elseif name == 'log_level' and not vim.list_contains({ 'debug', 'info', 'warning', 'error', 'critical' }, tostring(value):lower()) then
      add('error', ('logLevel %q is not one of debug, info, warning, error'):format(tostring(value)))
    elseif name == 'store' and type(value) ~= 'string' then
      add('error', 'store must be a path')
    end
  end
  return problems
end

---The command that runs `gantry <args>` the way the configured `cmd` runs `gantry serve`.
---@param cmd any
---@param args string[]
---@return string[]?
function M.gantry_cmd(cmd, args)
  if type(cmd) ~= 'table' then
    return nil
  end
  for i, part in ipairs(cmd) do
    if part == 'serve' then
      local out = vim.list_slice(cmd, 1, i - 1)
      vim.list_extend(out, args)
      return out
    end
  end
  return nil
end

---@param cmd string[]
---@param timeout_ms integer
---@param env? table<string, string> the config's cmd_env
---@return vim.SystemCompleted?, string?
local function run(cmd, timeout_ms, env)
  local ok, proc = pcall(vim.system, cmd, { text = true, env = env })
  if not ok then
    return nil, tostring(proc)
  end
  local done = proc:wait(timeout_ms)
  if done.code == 124 then
    return nil, ('no answer within %d s'):format(timeout_ms / 1000)
  end
  return done
end

---Parse `gantry doctor` output: { status, name, detail, hint }.
---@param text string
function M.parse_doctor(text)
  local checks = {}
  for line in vim.gsplit(text or '', '\n', { plain = true }) do
    local hint = line:match('^%s+hint: (.*)$')
    if hint and checks[#checks] then
      checks[#checks].hint = hint
    else
      local status, rest = line:match('^(%a+)%s+(.*)$')
      if status == 'ok' or status == 'fail' or status == 'info' then
        local name, detail = rest:match('^(%S+)%s*(.*)$')
        if name == 'endpoint' or name == 'gateway' then
          local second, tail = detail:match('^(%S+)%s*(.*)$')
          name, detail = name .. ' ' .. (second or ''), tail
        end
        checks[#checks + 1] = { status = status, name = name, detail = detail or '' }
      end
    end
  end
  return checks
end

---@param c { status: string, name: string, detail: string, hint: string? }
---@param fail_level 'error'|'warn'
local function report(c, fail_level)
  local msg = ('%s: %s'):format(c.name, c.detail)
  if c.status == 'ok' then
    health.ok(msg)
  elseif c.status == 'info' then
    health.info(msg)
  else
    health[fail_level](msg, c.hint and { c.hint } or nil)
  end
end

---A client's workspace folders, for the report: their paths, or "no root".
---@param client vim.lsp.Client
local function folder_names(client)
  local names = vim.tbl_map(function(folder)
    return vim.uri_to_fname(folder.uri)
  end, client.workspace_folders or {})
  return #names > 0 and table.concat(names, ', ') or 'no root'
end

function M.check()
  health.start('gantry: Neovim and the client configuration')
  if vim.fn.has('nvim-0.11') == 1 then
    health.ok('Neovim ' .. tostring(vim.version()))
  else
    health.error('Neovim 0.11 or newer is needed (vim.lsp.config / vim.lsp.enable)')
    return
  end
  local config = vim.lsp.config.gantry
  if not config then
    health.error("no 'gantry' LSP configuration: is editors/neovim on the runtimepath?", {
      'install the plugin (`:help gantry-install`), or call vim.lsp.config("gantry", {...})',
    })
    return
  end
  local clients = require('gantry').clients()
  health.info(('%d Gantry client(s) running; filetypes: %s'):format(#clients, table.concat(config.filetypes or {}, ', ')))

  health.start('gantry: server')
  local cmd = config.cmd
  local exe = type(cmd) == 'table' and require('gantry').exepath(cmd[1])
  if type(cmd) ~= 'table' then
    health.info('cmd is a function (a custom transport): the server cannot be checked from here')
  elseif not exe then
    health.error(('%s not found on PATH'):format(cmd[1]), {
      'pip install gantry-lsp (provides `gantry`), or set cmd in vim.lsp.config("gantry", { cmd = ... })',
    })
    return
  else
    health.ok(('found %s'):format(exe))
    local version_cmd = M.gantry_cmd(cmd, { '--version' })
    if version_cmd then
      local done, err = run(version_cmd, 15000, config.cmd_env)
      if done and done.code == 0 then
        health.ok(('version: %s'):format(vim.trim(done.stdout)))
      else
        health.error(('`%s` failed: %s'):format(table.concat(version_cmd, ' '), err or vim.trim((done.stderr or '') .. (done.stdout or ''))))
      end
    else
      health.info(('cannot tell the version: cmd does not end in `serve` (%s)'):format(table.concat(cmd, ' ')))
    end
  end

  health.start('gantry: settings')
  local problems = M.validate((config.settings or {}).gantry)
  for _, p in ipairs(problems) do
    health[p[1]]('editor settings: ' .. p[2])
  end
  if #problems == 0 then
    health.ok('editor settings (settings.gantry) are valid')
  end
  local status = require('gantry.status')
  for _, client in ipairs(clients) do
    local said = 0
    for _, msg in ipairs(status.messages[client.id] or {}) do
      if msg:find('invalid setting', 1, true) or msg:find('secret', 1, true) then
        said = said + 1
        health.error(('server (client %d): %s'):format(client.id, msg))
      end
    end
    if said == 0 then
      health.ok(('server (client %d, %s) accepted the settings'):format(client.id, folder_names(client)))
    end
  end

  -- Every workspace folder of the running servers (one server may serve several projects, each
  -- with its own settings and store), else the current project.
  local roots, seen = {}, {}
  for _, client in ipairs(clients) do
    for _, folder in ipairs(client.workspace_folders or {}) do
      local root = vim.uri_to_fname(folder.uri)
      if not seen[root] then
        seen[root], roots[#roots + 1] = true, root
      end
    end
  end
  if #roots == 0 then
    roots[1] = vim.fs.root(0, config.root_markers or { 'pyproject.toml' }) or vim.fn.getcwd()
  end
  local doctors = {} -- by root: { checks, by_name }
  for _, root in ipairs(roots) do
    local doctor_cmd = M.gantry_cmd(cmd, { 'doctor', '--workspace', root })
    local checks = {}
    if doctor_cmd then
      local done, err = run(doctor_cmd, 30000, config.cmd_env)
      if not done then
        health.warn(('`gantry doctor` did not run for %s: %s'):format(root, err))
      else
        checks = M.parse_doctor(done.stdout)
        if #checks == 0 then
          health.warn(('`gantry doctor` said nothing useful for %s: %s'):format(root, vim.trim((done.stderr or '') .. (done.stdout or ''))))
        end
      end
    end
    local by_name = {}
    for _, c in ipairs(checks) do
      by_name[c.name] = c
    end
    doctors[#doctors + 1] = { checks = checks, by_name = by_name }
    if by_name.settings then
      report({ status = by_name.settings.status, name = 'project settings (' .. root .. ')', detail = by_name.settings.detail, hint = by_name.settings.hint }, 'error')
    end
  end
  -- ruff, the sandbox and the remotes are the user's: the first folder's doctor tells
  local checks, by_name = doctors[1].checks, doctors[1].by_name
  if by_name.ruff then
    report(by_name.ruff, 'error')
  end

  health.start('gantry: context store')
  for i, root in ipairs(roots) do
    local store = doctors[i].by_name.store
    if store then
      report(#roots > 1 and vim.tbl_extend('force', store, { name = ('store (%s)'):format(root) }) or store, 'error')
    else
      health.info(('%s: not checked (`gantry doctor` unavailable)'):format(root))
    end
  end

  health.start('gantry: remote health')
  if by_name.sandbox then
    report(by_name.sandbox, 'warn')
  end
  for _, c in ipairs(checks) do
    if c.name:match('^endpoint ') or c.name:match('^gateway ') or c.name == 'remote' then
      report(c, 'warn')
    end
  end
  for _, client in ipairs(clients) do
    -- each folder's queue; a server without folders has none to name
    local folders = client.workspace_folders or {}
    for i = 1, math.max(#folders, 1) do
      local folder = folders[i]
      local who = folder and ('client %d (%s)'):format(client.id, vim.uri_to_fname(folder.uri)) or ('client %d'):format(client.id)
      if not require('gantry').offers(client, 'gantry.queueStatus') then
        break
      end
      local args = require('gantry.queue').args({}, folder and folder.uri)
      local resp = client:request_sync('workspace/executeCommand', { command = 'gantry.queueStatus', arguments = { args } }, 5000)
      if not resp then
        health.warn(('%s: gantry.queueStatus did not answer'):format(who))
      elseif resp.err then
        health.warn(('%s: %s'):format(who, resp.err.message or vim.inspect(resp.err)))
      else
        local result = resp.result or {}
        local remotes = type(result.remotes) == 'table' and result.remotes or {}
        local names = vim.tbl_keys(remotes)
        table.sort(names)
        health.info(('%s: state %s (%s)'):format(who, tostring(result.state), tostring(result.message or '')))
        for _, name in ipairs(names) do
          local h = remotes[name]
          if h == 'up' then
            health.ok(('remote %s: up'):format(name))
          else
            health.warn(('remote %s: %s'):format(name, tostring(h)), { 'work waits in the queue (`:GantryQueue`) and drains when it is back' })
          end
        end
        local counts = type(result.counts) == 'table' and result.counts or {}
        if (counts.dead or 0) > 0 or (counts.parked or 0) > 0 then
          health.warn(('%d dead, %d parked job(s)'):format(counts.dead or 0, counts.parked or 0), { ':GantryQueue, then r to retry' })
        end
      end
    end
  end
end

return M
