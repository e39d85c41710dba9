-- Test generation in a real Neovim on the fixture project ($GANTRY_NVIM_PROJECT, a copy with a
-- small budget): :GantryTests with the cursor in `clamp` runs the real engines and funnel in
-- the sandbox, shows the stages as LSP progress, and the kept tests end up in the project's
-- test file on disk (Neovim keeps an edited file as an unsaved buffer: the server writes it).

local plugin_dir = vim.g.gantry_test_plugin_dir
  or vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h:h')
local h = dofile(plugin_dir .. '/tests/harness.lua')
local test, wait_for, check = h.test, h.wait_for, h.check

local project = vim.env.GANTRY_NVIM_PROJECT
local module = project .. '/textutils.py'
local test_file = project .. '/tests/test_textutils.py'
local gantry = require('gantry')
gantry.setup({ cmd = vim.json.decode(vim.env.GANTRY_NVIM_SERVER_CMD) })

local progress = {}
vim.api.nvim_create_autocmd('LspProgress', {
  callback = function(ev)
    local value = ev.data.params.value
    progress[#progress + 1] = value.kind == 'begin' and value.title or value.message or value.kind
  end,
})

local messages = {}
local show_message = vim.lsp.handlers['window/showMessage']
vim.lsp.handlers['window/showMessage'] = function(err, params, ctx, config)
  messages[#messages + 1] = params.message
  return show_message(err, params, ctx, config)
end

local function tests_in(path)
  local n = 0
  for _, line in ipairs(vim.fn.filereadable(path) == 1 and vim.fn.readfile(path) or {}) do
    if line:match('^def test_') then
      n = n + 1
    end
  end
  return n
end

vim.cmd.edit(vim.fn.fnameescape(module))

test(':GantryTests in clamp writes kept tests to the project test file', function()
  wait_for('the gantry client to attach', function()
    return gantry.client(0, false)
  end)
  wait_for('the first review', function()
    return gantry.status() and gantry.status().state == 'ready'
  end)
  local before = tests_in(test_file)
  check(before == 2, 'the fixture has %d tests', before)
  local row = vim.fn.search('^def clamp(')
  vim.api.nvim_win_set_cursor(0, { row + 6, 4 })
  vim.cmd('GantryTests')
  local summary = wait_for("the server's summary", function()
    for _, message in ipairs(messages) do
      if message:find('for clamp', 1, true) then
        return message
      end
    end
  end, 150000, function()
    return vim.inspect(progress)
  end)
  check(summary:find('added to tests/test_textutils.py', 1, true), 'summary: %s', summary)
  check(tests_in(test_file) > before, 'no test added on disk; summary: %s', summary)
  local text = table.concat(vim.fn.readfile(test_file), '\n')
  check(text:find('def test_clamp_inside', 1, true), 'its own tests kept: %s', text)
  check(text:find('clamp(', 1, true), 'no clamp test: %s', text)
end)

test('the stages showed as progress', function()
  local seen = table.concat(progress, '\n')
  check(seen:find('Gantry: generating tests for clamp', 1, true), 'progress: %s', seen)
  for _, stage in ipairs({ 'generate: ', 'collect: ', 'rerun: ', 'coverage: ', 'place: ' }) do
    check(seen:find(stage, 1, true), 'no %q in: %s', stage, seen)
  end
end)

h.finish()
