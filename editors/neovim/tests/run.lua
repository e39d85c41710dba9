-- End-to-end tests of the Neovim plugin against the real Gantry server.
--
--   nvim --headless --clean -u editors/neovim/tests/minimal_init.lua -c 'luafile editors/neovim/tests/run.lua'
--
-- The server command comes from $GANTRY_NVIM_SERVER_CMD (a JSON list), default `gantry serve`.
-- Every wait is bounded. The last line is exactly "N passed, N failed"; the exit status is
-- non-zero on any failure.

local plugin_dir = vim.g.gantry_test_plugin_dir
  or vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h:h')
local h = dofile(plugin_dir .. '/tests/harness.lua')
local out, test, wait_for, check = h.out, h.test, h.wait_for, h.check

-- Everything the user is told (vim.notify), and every diagnostics publication.
local notes = {}
vim.notify = function(msg, level)
  notes[#notes + 1] = { msg = tostring(msg), level = level }
end
local function noted(pattern, since)
  for i = (since or 0) + 1, #notes do
    if notes[i].msg:find(pattern) then
      return notes[i]
    end
  end
end

-- What the server sends (diagnostics' data, gantry/status) and what the plugin sends it
-- (commands' arguments), checked against the server's schemas as it passes; the last test
-- expects no problem.
local contract = { problems = {}, checked = {} }
local function against(name, value, what)
  contract.checked[name] = (contract.checked[name] or 0) + 1
  for _, problem in ipairs(h.problems(h.schema(name), value)) do
    contract.problems[#contract.problems + 1] = what .. ' ' .. problem
  end
end
local status_module = require('gantry.status')
local status_update = status_module.update
status_module.update = function(client_id, params)
  against('status.json', params, 'gantry/status')
  return status_update(client_id, params)
end

local published = { count = 0 }
local default_publish = vim.lsp.handlers['textDocument/publishDiagnostics']
vim.lsp.handlers['textDocument/publishDiagnostics'] = function(err, params, ctx, config)
  for _, d in ipairs(params.diagnostics) do
    against('diagnostic-data.json', d.data, 'Diagnostic.data')
  end
  published.count = published.count + 1
  published[params.uri] = { diagnostics = params.diagnostics, client_id = ctx.client_id, n = published.count }
  return default_publish(err, params, ctx, config)
end

-- A workspace with problems: F401 (safe fix), E711 (unsafe fix), F821 (no fix).
local ws = vim.fn.tempname() .. '-gantry-ws'
vim.fn.mkdir(ws, 'p')
vim.fn.writefile({ '[project]', 'name = "demo"', '', '[tool.ruff.lint]', 'select = ["E", "F"]' }, ws .. '/pyproject.toml')
local source = {
  'import os',
  'import sys',
  '',
  '',
  'def f(x):',
  '    if x == None:',
  '        return undefined_name',
  '    return sys.argv',
}
vim.fn.writefile(source, ws .. '/bad.py')
vim.fn.writefile({ 'import json', '' }, ws .. '/other.py')
local file = ws .. '/bad.py'
local uri = vim.uri_from_fname(file)

local cmd = vim.env.GANTRY_NVIM_SERVER_CMD and vim.json.decode(vim.env.GANTRY_NVIM_SERVER_CMD) or { 'gantry', 'serve' }
out(('server: %s; workspace: %s'):format(table.concat(cmd, ' '), ws))

local gantry = require('gantry')
local execute = gantry.execute
gantry.execute = function(c, command, arguments, ...)
  if h.schema('commands/' .. command .. '.json') then
    against('commands/' .. command .. '.json', arguments, command)
  end
  return execute(c, command, arguments, ...)
end

-- A gantry/status as the server sends it: what a test does not say is zero, or empty.
local function status(state, counts, remotes, message)
  local zero = { documents = 0, reviewing = 0, indexing = 0, findings = 0, queued = 0, parked = 0, dead = 0, runningLocally = 0 }
  local params = { state = state, message = message or state, counts = vim.tbl_extend('force', zero, counts or {}), remotes = remotes or vim.empty_dict() }
  return h.fits('status.json', params)
end
-- An empty `index = {}` must reach the server as an object (lsp/gantry.lua's before_init).
gantry.setup({ cmd = cmd, settings = { gantry = { severity = { E711 = 'hint' }, index = {} } } })
vim.o.statusline = "%{%v:lua.require'gantry'.statusline()%}"

local function client()
  return gantry.client(vim.fn.bufnr(file), false)
end

local function codes(diags)
  local set = {}
  for _, d in ipairs(diags or {}) do
    set[tostring(d.code)] = d
  end
  return set
end

local function buf_codes()
  local ns = client() and vim.lsp.diagnostic.get_namespace(client().id, false)
  return codes(vim.tbl_map(function(d)
    return { code = d.code }
  end, ns and vim.diagnostic.get(vim.fn.bufnr(file), { namespace = ns }) or {}))
end

-- Wait for a publication for `uri` after publication number `after` (from `client_id` if
-- given); returns its diagnostics by code.
local function next_publication(after, what, client_id)
  local p = wait_for(what, function()
    local p = published[uri]
    return p and p.n > after and (client_id == nil or p.client_id == client_id) and p
  end)
  return codes(p.diagnostics)
end

vim.cmd.edit(vim.fn.fnameescape(file))

test('diagnostics appear for a file with issues', function()
  check(vim.bo.filetype == 'python', 'filetype is %q', vim.bo.filetype)
  wait_for('the gantry client to attach', client)
  local c = wait_for('F401, E711 and F821', function()
    local c = buf_codes()
    return c.F401 and c.E711 and c.F821 and c
  end)
  local d = vim.diagnostic.get(0)[1]
  local lsp = d.user_data.lsp
  check(d.source == 'gantry', 'source %q', tostring(d.source))
  check(type(lsp.data) == 'table' and type(lsp.data.fingerprint) == 'string', 'no data.fingerprint: %s', vim.inspect(lsp))
  check(lsp.codeDescription and lsp.codeDescription.href:find('ruff'), 'no codeDescription: %s', vim.inspect(lsp))
  check(c.F401 and c.F821, 'codes')
  for _, diag in ipairs(vim.diagnostic.get(0)) do
    if diag.code == 'E711' then
      check(diag.severity == vim.diagnostic.severity.HINT, 'settings.gantry.severity not applied: %s', diag.severity)
    end
  end
end)

test('statusline component shows the status', function()
  local text = wait_for('the statusline to say ready', function()
    local s = vim.api.nvim_eval_statusline(vim.o.statusline, {}).str
    return s:find('^Gantry: ready') and s
  end)
  check(gantry.status().state == 'ready', 'status %s', vim.inspect(gantry.status()))
  local describe = require('gantry.status').describe
  local busy = describe(status('busy', { reviewing = 1 }))
  check(busy == 'reviewing', 'busy: %s', busy)
  local q = describe(status('offline', { queued = 3 }, { ['gpu-box'] = 'down', other = 'up' }))
  check(q == 'offline, 3 queued, remote gpu-box down', 'offline: %q', q)
  check(describe(status('queued', { queued = 2 })) == '2 queued', 'queued')
  out('     statusline: ' .. text)
  -- a gantry/status notification as the server sends it when the gateway is down
  local id, saved = client().id, gantry.status()
  local handler = vim.lsp.config.gantry.handlers['gantry/status']
  handler(nil, status('offline', { queued = 3 }, { ['gpu-box'] = 'down' }, 'Remote: gateway down'), { client_id = id, method = 'gantry/status' })
  local down = vim.api.nvim_eval_statusline(vim.o.statusline, {}).str
  check(down == 'Gantry: offline, 3 queued, remote gpu-box down', 'statusline %q', down)
  handler(nil, saved, { client_id = id, method = 'gantry/status' })
end)

test('a quick fix applies and its diagnostic disappears', function()
  vim.api.nvim_win_set_cursor(0, { 1, 0 })
  local titles = {}
  vim.lsp.buf.code_action({
    apply = true,
    filter = function(action)
      titles[#titles + 1] = action.title
      return action.isPreferred == true and action.title:find('F401', 1, true) ~= nil
    end,
  })
  wait_for('`import os` to be removed', function()
    return vim.api.nvim_buf_get_lines(0, 0, 1, false)[1] == 'import sys'
  end)
  wait_for('F401 to disappear (E711, F821 stay)', function()
    local c = buf_codes()
    return not c.F401 and c.E711 and c.F821
  end)
  check(vim.tbl_contains(titles, 'Gantry: dismiss F401 here'), 'no dismiss action among %s', vim.inspect(titles))
  vim.cmd('silent write')
end)

local function reopen_and_check(what, how, client_id)
  local before = published.count
  how()
  -- The first publication after a close may be the clearing one: wait for the full set.
  local p = wait_for('diagnostics with E711 after ' .. what, function()
    local p = published[uri]
    return p and p.n > before and (client_id == nil or p.client_id == client_id)
      and codes(p.diagnostics).E711 and p
  end)
  check(not codes(p.diagnostics).F821, 'the dismissed F821 came back after %s', what)
  check(not buf_codes().F821, 'the dismissed F821 is shown after %s', what)
end

test(':GantryDismiss dismisses the finding under the cursor and it stays gone', function()
  local f821
  for _, d in ipairs(vim.diagnostic.get(0)) do
    if d.code == 'F821' then
      f821 = d
    end
  end
  check(f821, 'no F821')
  vim.api.nvim_win_set_cursor(0, { f821.lnum + 1, f821.col + 2 })
  local since = #notes
  vim.cmd('GantryDismiss')
  wait_for('F821 to disappear', function()
    local c = buf_codes()
    return not c.F821 and c.E711
  end)
  wait_for('the dismissal to be confirmed', function()
    return noted('dismissed F821', since)
  end)
  -- reload from disk
  reopen_and_check(':edit!', function()
    vim.cmd('edit!')
  end)
  -- close and open again
  reopen_and_check('bwipeout and :edit', function()
    vim.cmd('bwipeout!')
    vim.cmd.edit(vim.fn.fnameescape(file))
  end)
  -- restart the server
  local old = client()
  old:stop()
  wait_for('the client to stop', function()
    return old:is_stopped()
  end)
  vim.cmd('bwipeout!')
  reopen_and_check('a server restart', function()
    vim.cmd.edit(vim.fn.fnameescape(file))
    wait_for('a new gantry client', function()
      return client() and client().id ~= old.id
    end)
  end)
  check(client().id ~= old.id, 'same client')
end)

test(':GantryDismiss! marks the finding under the cursor as a false positive', function()
  -- After the restart above, the new client's diagnostics reach the buffer on their own time.
  local e711 = wait_for('E711 in the buffer', function()
    for _, d in ipairs(vim.diagnostic.get(0)) do
      if d.code == 'E711' then
        return d
      end
    end
  end)
  vim.api.nvim_win_set_cursor(0, { e711.lnum + 1, 0 })
  local since = #notes
  vim.cmd('GantryDismiss! checked by hand')
  wait_for('E711 to disappear', function()
    return not buf_codes().E711
  end)
  wait_for('the verdict to be confirmed', function()
    return noted('marked as a false positive E711', since)
  end)
end)

test(':GantryDismiss without a finding under the cursor says so', function()
  vim.api.nvim_win_set_cursor(0, { 3, 0 })
  local since = #notes
  vim.cmd('GantryDismiss')
  check(noted('no Gantry finding under the cursor', since), 'notes: %s', vim.inspect(notes))
end)

test(':checkhealth gantry reports no errors', function()
  vim.cmd('checkhealth gantry')
  local lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
  local text = table.concat(lines, '\n')
  out('     ' .. table.concat(vim.tbl_filter(function(l)
    return l:find('OK') or l:find('WARN') or l:find('ERROR')
  end, lines), '\n     '))
  check(not text:find('ERROR'), 'errors in:\n%s', text)
  check(text:find('version: gantry'), 'no version in:\n%s', text)
  check(text:find('store'), 'no store check in:\n%s', text)
  check(text:find('settings'), 'no settings check in:\n%s', text)
  vim.cmd('bwipeout!')
  vim.cmd.edit(vim.fn.fnameescape(file))
  wait_for('the client to attach again', client)
end)

test(':checkhealth gantry reports a missing server as an error', function()
  vim.lsp.config('gantry', { cmd = { 'gantry-not-installed-here', 'serve' } })
  vim.cmd('checkhealth gantry')
  local text = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')
  vim.lsp.config('gantry', { cmd = cmd })
  vim.cmd('bwipeout!')
  check(text:find('ERROR gantry%-not%-installed%-here not found'), 'no error in:\n%s', text)
  vim.cmd.edit(vim.fn.fnameescape(file))
  wait_for('the client to attach again', client)
end)

test(':checkhealth gantry flags invalid editor settings', function()
  local problems = require('gantry.health').validate({ maxFileSizeKb = 'x', gatewayToken = 'abc', ruff = { select = { 'E' }, bogus = 1 }, severity = { E = 'loud' } })
  local text = vim.inspect(problems)
  check(#problems == 5, 'problems: %s', text)
  check(#require('gantry.health').validate({ maxFileSizeKb = 512, ruff = { extendSelect = { 'B' } }, execution = { gateway = { tokenEnv = 'X' } } }) == 0, 'valid settings flagged')
end)

test(':GantryQueue opens a floating window', function()
  local before = vim.api.nvim_get_current_win()
  vim.cmd('GantryQueue')
  local win = wait_for('a floating window', function()
    local w = vim.api.nvim_get_current_win()
    return w ~= before and vim.api.nvim_win_get_config(w).relative ~= '' and w
  end)
  local buf = vim.api.nvim_win_get_buf(win)
  local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  out('     ' .. table.concat(lines, '\n     '))
  check(vim.bo[buf].filetype == 'gantryqueue', 'filetype %q', vim.bo[buf].filetype)
  check(lines[1] == 'Gantry queue', 'first line %q', lines[1])
  check(table.concat(lines, '\n'):find('State: ready'), 'no state')
  vim.cmd('normal q')
  check(not vim.api.nvim_win_is_valid(win), 'q did not close the window')
end)

test(':GantryTests sends the cursor or the lines; the server answers for them', function()
  vim.cmd.buffer(vim.fn.bufnr(file))
  local c = client()
  local tests = require('gantry.commands')
  vim.api.nvim_win_set_cursor(0, { 3, 0 })
  local args = tests.tests_args(0, nil, c.offset_encoding)
  check(args.uri == uri and args.range.start.line == 2 and args.range['end'].line == 2, 'cursor: %s', vim.inspect(args))
  args = tests.tests_args(0, { 2, 5 }, c.offset_encoding)
  check(args.range.start.line == 1 and args.range['end'].line == 5 and args.range['end'].character == 0, 'lines: %s', vim.inspect(args))
  h.fits('commands/gantry.generateTests.json', { args })
  -- on an import line there is nothing to test: the real server says so (a real run: testgen.lua)
  vim.api.nvim_win_set_cursor(0, { 1, 0 })
  local since = #notes
  vim.cmd('GantryTests')
  wait_for('the server to refuse', function()
    return noted('no public function, method or class there', since)
  end)
  -- a server without the command is told apart plainly, and nothing is sent
  local commands = c.server_capabilities.executeCommandProvider.commands
  local offered = vim.deepcopy(commands)
  for i = #commands, 1, -1 do
    if commands[i] == 'gantry.generateTests' then
      table.remove(commands, i)
    end
  end
  since = #notes
  vim.cmd('GantryTests')
  for i, name in ipairs(offered) do
    commands[i] = name
  end
  check(noted('not available', since), 'notes: %s', vim.inspect(notes))
end)

test(':GantryReview reviews the file, :GantryReview! the workspace', function()
  local since = #notes
  local before = published.count
  vim.cmd('GantryReview')
  wait_for('a review of the file', function()
    return noted('reviewing', since) and published.count > before
  end)
  vim.cmd('GantryReview!')
  local note = wait_for('the workspace review', function()
    return noted('reviewed %d+ files', since)
  end)
  check(note.msg:find('reviewed 2 files'), 'note %q', note.msg)
end)

test(':help gantry parses (helptags)', function()
  local tmp = vim.fn.tempname() .. '-gantry-doc'
  vim.fn.mkdir(tmp .. '/doc', 'p')
  vim.fn.writefile(vim.fn.readfile(plugin_dir .. '/doc/gantry.txt'), tmp .. '/doc/gantry.txt')
  vim.cmd('helptags ' .. vim.fn.fnameescape(tmp .. '/doc'))
  local tags = vim.fn.readfile(tmp .. '/doc/tags')
  local names = {}
  for _, l in ipairs(tags) do
    names[l:match('^(%S+)')] = true
  end
  for _, tag in ipairs({ 'gantry', 'gantry.txt', ':GantryReview', ':GantryQueue', ':GantryDismiss', ':GantryTests', 'gantry-statusline', 'gantry-health', 'gantry-settings', 'gantry-install', 'gantry-trust', 'gantry-workspaces', 'gantry.reuse_client()', 'gantry.folder()' }) do
    check(names[tag], 'tag %s missing', tag)
  end
  local text = table.concat(vim.fn.readfile(tmp .. '/doc/gantry.txt'), '\n')
  local ok, parser = pcall(vim.treesitter.get_string_parser, text, 'vimdoc')
  if ok then
    -- the parser counts the trailing modeline as an error (Neovim's own docs too): skip it
    local query = vim.treesitter.query.parse('vimdoc', '(ERROR) @error')
    for _, node in query:iter_captures(parser:parse()[1]:root(), text) do
      local bad = vim.treesitter.get_node_text(node, text)
      check(bad:match('^vim:'), 'doc/gantry.txt line %d does not parse as vimdoc: %s', node:start() + 1, bad:sub(1, 60))
    end
  end
  vim.opt.runtimepath:append(tmp)
  vim.cmd('help gantry-commands')
  check(vim.fn.expand('%:t') == 'gantry.txt', 'help opened %s', vim.fn.expand('%'))
  vim.cmd('helpclose')
end)

test("what the server sent and the plugin sent it fits the server's schemas", function()
  for _, name in ipairs({ 'status.json', 'diagnostic-data.json', 'commands/gantry.dismissFinding.json', 'commands/gantry.reviewFile.json', 'commands/gantry.reviewWorkspace.json', 'commands/gantry.queueStatus.json' }) do
    check((contract.checked[name] or 0) > 0, 'nothing was checked against %s: %s', name, vim.inspect(contract.checked))
  end
  check(#contract.problems == 0, 'problems:\n%s', table.concat(contract.problems, '\n'))
  -- and the validator finds what drifted
  local found = h.problems(h.schema('commands/gantry.dismissFinding.json'), { { uri = 'file:///a.py', verdict = 'nope' } })
  check(#found == 2, 'found: %s', vim.inspect(found))
  found = h.problems(h.schema('status.json'), { state = 'ready', message = 'm', counts = { documents = 1.5 }, remotes = {} })
  check(#found == 8, 'found: %s', vim.inspect(found))
end)

h.finish()
