-- Two projects in one Neovim session, against the real Gantry server: each buffer's diagnostics
-- follow its own project's settings ([tool.ruff] and [tool.gantry] of its pyproject.toml).
--
--   nvim --headless --clean -u editors/neovim/tests/minimal_init.lua -c 'luafile editors/neovim/tests/multiroot.lua'
--
-- The server command comes from $GANTRY_NVIM_SERVER_CMD (a JSON list), default `gantry serve`.
-- Every wait is bounded and says what it saw when it times out. The last line is exactly
-- "N passed, N failed"; tests/editors/test_neovim.py runs this.

local plugin_dir = vim.g.gantry_test_plugin_dir
  or vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h:h')
local h = dofile(plugin_dir .. '/tests/harness.lua')
local out, test, wait_for, check = h.out, h.test, h.wait_for, h.check
local gantry = require('gantry')

vim.notify = function() end -- remove_workspace_folder() always says something; nobody reads it

-- Every publication, by URI: { client_id, codes = { CODE = 'SEVERITY' } }.
local published = {}
local default_publish = vim.lsp.handlers['textDocument/publishDiagnostics']
vim.lsp.handlers['textDocument/publishDiagnostics'] = function(err, params, ctx, config)
  local codes = {}
  for _, d in ipairs(params.diagnostics) do
    codes[tostring(d.code)] = vim.diagnostic.severity[d.severity or 1]
  end
  published[params.uri] = published[params.uri] or {}
  table.insert(published[params.uri], { client_id = ctx.client_id, codes = codes })
  return default_publish(err, params, ctx, config)
end

-- alpha selects ruff's F rules and makes F401 an error; beta selects E, adds F401 through
-- [tool.gantry.ruff] and makes it a hint. The same text in each: `import os` (F401), `== None`
-- (E711), an undefined name (F821). The editor's settings make F821 "info" everywhere.
local ws = vim.fn.tempname() .. '-gantry-multiroot'
local alpha, beta, loose = ws .. '/alpha', ws .. '/beta', ws .. '/loose'
for _, dir in ipairs({ alpha, beta, loose }) do
  vim.fn.mkdir(dir, 'p')
  vim.fn.writefile({ 'import os', '', '', 'def f(x):', '    if x == None:', '        return undefined_name', '    return x' }, dir .. '/app.py')
end
vim.fn.writefile({ '[project]', 'name = "alpha"', '', '[tool.ruff.lint]', 'select = ["F"]', '', '[tool.gantry.severity]', 'F401 = "error"' }, alpha .. '/pyproject.toml')
vim.fn.writefile({ '[project]', 'name = "beta"', '', '[tool.ruff.lint]', 'select = ["E"]', '', '[tool.gantry.ruff]', 'extend-select = ["F401"]', '', '[tool.gantry.severity]', 'F401 = "hint"' }, beta .. '/pyproject.toml')

-- Around both (and for a file outside them): ruff's selection made explicit, so that the
-- defaults do not depend on ruff's version. Ruff takes the closest configuration: alpha and beta
-- have their own. Gantry does not read ruff.toml.
vim.fn.writefile({ '[lint]', 'select = ["E", "F"]' }, ws .. '/ruff.toml')

-- What each buffer must show.
local ALPHA = { F401 = 'ERROR', F821 = 'INFO' } -- alpha's F selection and severity, the editor's F821
local BETA = { E711 = 'INFO', F401 = 'HINT' } -- beta's E selection, extend-select and severity
-- Outside every project: ws's ruff selection, Gantry's default levels and the editor's F821.
local DEFAULTS = { E711 = 'INFO', F401 = 'WARN', F821 = 'INFO' }
-- In a folder that has no Gantry settings: ruff still reads the project's [tool.ruff] (it takes
-- the configuration closest to the file), but [tool.gantry] is not applied.
local ALPHA_RUFF_ONLY = { F401 = 'WARN', F821 = 'INFO' }
local BETA_RUFF_ONLY = { E711 = 'INFO' }

local cmd = vim.env.GANTRY_NVIM_SERVER_CMD and vim.json.decode(vim.env.GANTRY_NVIM_SERVER_CMD) or { 'gantry', 'serve' }
out(('server: %s; projects: %s, %s'):format(table.concat(cmd, ' '), alpha, beta))
gantry.setup({ cmd = cmd, settings = { gantry = { severity = { F821 = 'info' } } } })

local function uri(path)
  return vim.uri_from_fname(path .. '/app.py')
end

local function buf(path)
  return vim.fn.bufnr(path .. '/app.py')
end

-- The buffer's Gantry diagnostics: { CODE = 'SEVERITY' }.
local function shown(path)
  local codes = {}
  local b = buf(path)
  for _, d in ipairs(b > 0 and vim.diagnostic.get(b) or {}) do
    if d.source == 'gantry' then
      codes[tostring(d.code)] = vim.diagnostic.severity[d.severity]
    end
  end
  return codes
end

local function folders(client)
  return vim.tbl_map(function(f)
    return vim.uri_to_fname(f.uri)
  end, client.workspace_folders or {})
end

local function state()
  local lines = {}
  for _, path in ipairs({ alpha, beta, loose }) do
    local b = buf(path)
    local ids = b > 0 and vim.tbl_map(function(c)
      return c.id
    end, vim.lsp.get_clients({ bufnr = b, name = 'gantry' })) or {}
    lines[#lines + 1] = ('%s: buffer %d, clients %s, shown %s, published %s'):format(
      vim.fn.fnamemodify(path, ':t'), b, vim.inspect(ids), vim.inspect(shown(path)), vim.inspect(published[uri(path)] or {}, { newline = ' ', indent = '' }))
  end
  for _, c in ipairs(gantry.clients()) do
    lines[#lines + 1] = ('client %d: folders %s'):format(c.id, vim.inspect(folders(c)))
  end
  return table.concat(lines, '\n  ')
end

-- Wait until the buffer of `path` shows exactly `want`.
local function expect(path, want, what)
  wait_for(('%s to show %s (%s)'):format(vim.fn.fnamemodify(path, ':t'), vim.inspect(want), what), function()
    return vim.deep_equal(shown(path), want)
  end, nil, state)
end

local function open(path)
  vim.cmd.edit(vim.fn.fnameescape(path .. '/app.py'))
  return wait_for('a Gantry client for ' .. path, function()
    return gantry.client(0, false)
  end, nil, state)
end

-- Stop every client and close every buffer, for a fresh start.
local function reset()
  for _, c in ipairs(gantry.clients()) do
    c:stop()
  end
  wait_for('the clients to stop', function()
    return #gantry.clients() == 0
  end, nil, state)
  vim.cmd('silent! %bwipeout!')
  published = {}
end

test('two projects: one server, a workspace folder each, diagnostics by their own settings', function()
  local a = open(alpha)
  expect(alpha, ALPHA, "alpha's settings")
  local b = open(beta)
  check(b.id == a.id, 'beta got its own client %d (alpha: %d):\n  %s', b.id, a.id, state())
  check(#gantry.clients() == 1, '%d clients:\n  %s', #gantry.clients(), state())
  check(vim.deep_equal(folders(a), { alpha, beta }), 'folders %s', vim.inspect(folders(a)))
  expect(beta, BETA, "beta's settings")
  expect(alpha, ALPHA, "alpha's settings, unchanged by beta's arrival")
  -- beta joined as a folder before its didOpen: it was never shown alpha's or the defaults
  for _, p in ipairs(published[uri(beta)]) do
    check(next(p.codes) == nil or vim.deep_equal(p.codes, BETA), 'beta was published %s:\n  %s', vim.inspect(p.codes), state())
  end
  out(('     client %d serves %s'):format(a.id, table.concat(folders(a), ', ')))
end)

test('a file outside both projects joins the same server and gets the defaults', function()
  check(vim.fs.root(loose .. '/app.py', vim.lsp.config.gantry.root_markers) == nil, 'the test directory %s is inside a project', loose)
  local c = open(loose)
  check(#gantry.clients() == 1 and c.id == gantry.clients()[1].id, 'another client:\n  %s', state())
  expect(loose, DEFAULTS, 'the defaults')
  check(vim.deep_equal(folders(c), { alpha, beta }), 'folders %s', vim.inspect(folders(c)))
  expect(alpha, ALPHA, "alpha's settings")
  expect(beta, BETA, "beta's settings")
end)

test(":GantryQueue and :GantryRetry ask for the buffer's folder's queue", function()
  local sent = {}
  local execute = gantry.execute
  gantry.execute = function(client, command, arguments, ...)
    sent[#sent + 1] = { command = command, arguments = arguments }
    return execute(client, command, arguments, ...)
  end
  local ok, err = pcall(function()
    for _, case in ipairs({ { beta, beta }, { alpha, alpha }, { loose, nil } }) do
      vim.cmd.buffer(buf(case[1]))
      sent = {}
      vim.cmd('GantryQueue')
      local win = wait_for('the queue window', function()
        local w = vim.api.nvim_get_current_win()
        return vim.api.nvim_win_get_config(w).relative ~= '' and w
      end, nil, function()
        return vim.inspect(sent)
      end)
      local lines = vim.api.nvim_buf_get_lines(vim.api.nvim_win_get_buf(win), 0, -1, false)
      local title = vim.inspect(vim.api.nvim_win_get_config(win).title)
      vim.api.nvim_win_close(win, true)
      local want = case[2] and vim.uri_from_fname(case[2])
      local args = sent[1] and sent[1].arguments[1] or {}
      check(sent[1] and sent[1].command == 'gantry.queueStatus' and args.uri == want, 'for %s sent %s', case[1], vim.inspect(sent))
      check(table.concat(lines, '\n'):find('State: '), 'for %s the server answered:\n%s', case[1], table.concat(lines, '\n'))
      check(title:find(case[2] and vim.fs.basename(case[2]) or ' Gantry queue ', 1, true), 'title %s', title)
      sent = {}
      vim.cmd('GantryRetry')
      check(sent[1] and sent[1].command == 'gantry.retryQueued' and (sent[1].arguments[1] or {}).uri == want, 'for %s sent %s', case[1], vim.inspect(sent))
    end
  end)
  gantry.execute = execute
  assert(ok, err)
end)

test(':checkhealth gantry reports each folder: its project settings, store and queue', function()
  vim.cmd.buffer(buf(alpha))
  vim.cmd('checkhealth gantry')
  local text = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')
  vim.cmd('bwipeout!')
  local id = gantry.clients()[1].id
  for _, want in ipairs({
    ('server (client %d, %s, %s) accepted the settings'):format(id, alpha, beta),
    ('project settings (%s)'):format(alpha),
    ('project settings (%s)'):format(beta),
    ('store (%s)'):format(alpha),
    ('store (%s)'):format(beta),
    ('client %d (%s): state'):format(id, alpha),
    ('client %d (%s): state'):format(id, beta),
  }) do
    check(text:find(want, 1, true), 'no %q in:\n%s', want, text)
  end
  check(not text:find('ERROR'), 'errors in:\n%s', text)
end)

test("Neovim's rule (a server per root, `:help gantry-workspaces`): each server its own settings", function()
  reset()
  vim.lsp.config('gantry', {
    reuse_client = function(client, config)
      return client.name == config.name and client.root_dir == config.root_dir
    end,
  })
  local ok, err = pcall(function()
    local a = open(alpha)
    local b = open(beta)
    check(a.id ~= b.id and #gantry.clients() == 2, 'one client for both:\n  %s', state())
    check(vim.deep_equal(folders(a), { alpha }) and vim.deep_equal(folders(b), { beta }), 'folders:\n  %s', state())
    expect(alpha, ALPHA, "alpha's settings, from alpha's server")
    expect(beta, BETA, "beta's settings, from beta's server")
  end)
  vim.lsp.config('gantry', { reuse_client = gantry.reuse_client })
  assert(ok, err)
end)

test('a project opened while the first server starts gets a server of its own, with its own settings', function()
  reset()
  -- both in one go: the first client has not had its initialize answer yet
  vim.cmd.edit(vim.fn.fnameescape(alpha .. '/app.py'))
  vim.cmd.edit(vim.fn.fnameescape(beta .. '/app.py'))
  local a = wait_for('a client for alpha', function()
    return gantry.client(buf(alpha), false)
  end, nil, state)
  local b = wait_for('a client for beta', function()
    return gantry.client(buf(beta), false)
  end, nil, state)
  check(a.id ~= b.id and #gantry.clients() == 2, 'clients:\n  %s', state())
  check(vim.deep_equal(folders(a), { alpha }) and vim.deep_equal(folders(b), { beta }), 'folders:\n  %s', state())
  expect(alpha, ALPHA, "alpha's settings")
  expect(beta, BETA, "beta's settings")
end)

test('a folder added at run time (vim.lsp.buf.add_workspace_folder) brings its settings, removed takes them away', function()
  reset()
  -- One repository around both projects, its root the only marker: one folder, `ws`, which
  -- has no Gantry settings of its own.
  vim.fn.mkdir(ws .. '/.git', 'p')
  vim.lsp.config('gantry', { root_markers = { '.git' } })
  local ok, err = pcall(function()
    local a = open(alpha)
    local b = open(beta)
    check(a.id == b.id and vim.deep_equal(folders(b), { ws }), 'not one client serving %s:\n  %s', ws, state())
    expect(alpha, ALPHA_RUFF_ONLY, "alpha's [tool.ruff] only (alpha is not a folder)")
    expect(beta, BETA_RUFF_ONLY, "beta's [tool.ruff] only (beta is not a folder)")
    vim.lsp.buf.add_workspace_folder(beta) -- the current buffer is beta's
    check(vim.deep_equal(folders(b), { ws, beta }), 'folders %s', vim.inspect(folders(b)))
    expect(beta, BETA, "beta's settings once beta is a folder")
    expect(alpha, ALPHA_RUFF_ONLY, "alpha's [tool.ruff] only (alpha is still not a folder)")
    vim.lsp.buf.remove_workspace_folder(beta)
    check(vim.deep_equal(folders(b), { ws }), 'folders %s', vim.inspect(folders(b)))
    expect(beta, BETA_RUFF_ONLY, "beta's [tool.ruff] only, once beta is removed")
  end)
  vim.lsp.config('gantry', { root_markers = { 'pyproject.toml', 'gantry.toml', '.git' } })
  vim.fn.delete(ws .. '/.git', 'rf')
  assert(ok, err)
end)

h.finish()
