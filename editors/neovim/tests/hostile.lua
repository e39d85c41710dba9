-- A hostile project: Neovim starts in a repository that ships its own `gantry` (at its root, in
-- .venv/bin and in bin, each appending to a canary file when run), a .nvim.lua and a gantry.toml,
-- under a $PATH whose relative entries ('.', '', '.venv/bin', 'bin') would find those scripts.
-- The plugin must run only the user's gantry and read nothing of the project.
--
--   cd PROJECT && GANTRY_NVIM_CANARY=... GANTRY_NVIM_GANTRY=... \
--     nvim --headless --clean -u .../tests/minimal_init.lua -c 'luafile .../tests/hostile.lua'
--
-- $GANTRY_NVIM_GANTRY is the user's gantry, on an absolute $PATH entry after the relative ones.
-- tests/editors/test_neovim.py builds the project and runs this.

local h = dofile(vim.g.gantry_test_plugin_dir .. '/tests/harness.lua')
local test, wait_for, check = h.test, h.wait_for, h.check
local gantry = require('gantry')

local project = vim.fn.getcwd()
local canary = vim.env.GANTRY_NVIM_CANARY
local function ran()
  return vim.uv.fs_stat(canary) and table.concat(vim.fn.readfile(canary), ', ')
end

-- Every file of the project that the plugin's code opens from now on: there must be none.
-- (Neovim's own readers, such as its .editorconfig support, are not the plugin's.)
local plugin = vim.g.gantry_test_plugin_dir
local function from_plugin()
  for level = 3, math.huge do
    local info = debug.getinfo(level, 'S')
    if not info then
      return false
    end
    for _, dir in ipairs({ '/lua/', '/lsp/', '/plugin/' }) do
      if vim.startswith(info.source, '@' .. plugin .. dir) then
        return true
      end
    end
  end
end
local reads = {}
local function watch(module, name)
  local original = module[name]
  module[name] = function(path, ...)
    if type(path) == 'string' and vim.startswith(vim.fn.fnamemodify(path, ':p'), project .. '/') and from_plugin() then
      reads[#reads + 1] = ('%s(%s)'):format(name, path)
    end
    return original(path, ...)
  end
end
for _, f in ipairs({ { io, 'open' }, { io, 'lines' }, { vim.uv, 'fs_open' }, { vim.fn, 'readfile' }, { _G, 'loadfile' }, { _G, 'dofile' } }) do
  watch(f[1], f[2])
end

-- Neovim's own Python provider (probed by ftplugin/python.vim) looks for `python3` on $PATH,
-- relative entries included: not the plugin's doing, and off here.
vim.g.loaded_python3_provider = 0

local SETTINGS = { severity = { F401 = 'hint' } }
gantry.setup({ settings = { gantry = SETTINGS } })
vim.cmd.edit('app.py')

test("the project's .nvim.lua is not sourced", function()
  check(not vim.o.exrc, "'exrc' is off: project settings reach Neovim only through it (and vim.secure)")
  check(vim.g.gantry_hostile_exrc == nil, '.nvim.lua was sourced')
end)

test("the server is the user's gantry, under a $PATH without relative entries", function()
  local client = wait_for('the gantry client', function()
    return gantry.client(0, false)
  end)
  check(client.config.cmd[1] == vim.env.GANTRY_NVIM_GANTRY, 'cmd %s', vim.inspect(client.config.cmd))
  for dir in vim.gsplit(client.config.cmd_env.PATH, ':', { plain = true }) do
    check(vim.startswith(dir, '/'), 'relative entry %q in the server PATH %s', dir, client.config.cmd_env.PATH)
  end
  local f401 = wait_for("the real server's F401", function()
    return vim.iter(vim.diagnostic.get(0)):find(function(d)
      return d.code == 'F401'
    end)
  end)
  check(f401.severity == vim.diagnostic.severity.HINT, "the user's settings did not apply: %s", f401.severity)
  check(not ran(), 'the project ran: %s', ran())
end)

test("the server is told the user's settings only", function()
  local client = gantry.client(0, false)
  check(client.config.init_options == nil, 'initializationOptions %s', vim.inspect(client.config.init_options))
  local answer = vim.lsp.handlers['workspace/configuration'](nil, { items = { { section = 'gantry' } } }, { client_id = client.id })
  check(vim.deep_equal(answer, { SETTINGS }), 'workspace/configuration answers %s', vim.inspect(answer))
end)

test('with the project the only place that has a gantry, nothing runs', function()
  for _, client in ipairs(gantry.clients()) do
    client:stop()
  end
  wait_for('the client to stop', function()
    return #gantry.clients() == 0
  end)
  local saved = vim.env.PATH
  vim.env.PATH = '.::.venv/bin:bin'
  vim.lsp.config('gantry', {}) -- lsp/gantry.lua is read again, under this $PATH
  local config = vim.lsp.config.gantry
  local ok, id = pcall(vim.lsp.start, config, { bufnr = 0, silent = true })
  vim.cmd('checkhealth gantry')
  local health = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')
  vim.cmd('bwipeout!')
  vim.env.PATH = saved
  check(config.cmd[1] == 'gantry', 'cmd %s', vim.inspect(config.cmd))
  check(not (ok and id), 'a client started: %s', vim.inspect(id))
  check(health:find('ERROR gantry not found on PATH'), 'checkhealth:\n%s', health)
  check(not ran(), 'the project ran: %s', ran())
end)

test('the plugin opened no file of the project', function()
  check(#reads == 0, 'read: %s', table.concat(reads, ', '))
end)

h.finish()
