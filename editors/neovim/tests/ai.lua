-- AI review in a real Neovim: the endpoint comes from the user's own settings
-- (settings.gantry.inference.endpoints); the model is the scripted Messages-API server the
-- Python side started on loopback ($GANTRY_NVIM_MODEL_URL). A save sends the function to it, its
-- finding arrives as a diagnostic (source "gantry-ai"), hover shows its provenance, and its
-- checked fix applies through the code action.

local plugin_dir = vim.g.gantry_test_plugin_dir
  or vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h:h')
local h = dofile(plugin_dir .. '/tests/harness.lua')
local test, wait_for, check = h.test, h.wait_for, h.check

local ws = vim.fn.tempname() .. '-gantry-ai'
vim.fn.mkdir(ws, 'p')
vim.fn.writefile({ '[tool.ruff.lint]', 'select = ["F"]' }, ws .. '/pyproject.toml')
vim.fn.writefile({
  'def average(values):',
  '    total = 0',
  '    for value in values:',
  '        total += value',
  '    return total / len(values)',
}, ws .. '/stats.py')
local file = ws .. '/stats.py'

local cmd = vim.json.decode(vim.env.GANTRY_NVIM_SERVER_CMD)
local gantry = require('gantry')
gantry.setup({
  cmd = cmd,
  settings = {
    gantry = {
      inference = {
        endpoints = { { name = 'gpu-box', baseUrl = vim.env.GANTRY_NVIM_MODEL_URL, model = 'review-model' } },
      },
    },
  },
})

local function ai_diagnostics()
  return vim.tbl_filter(function(d)
    return d.source == 'gantry-ai'
  end, vim.diagnostic.get(vim.fn.bufnr(file)))
end

vim.cmd.edit(vim.fn.fnameescape(file))

test('a save asks the model; its finding arrives as a gantry-ai diagnostic', function()
  wait_for('the gantry client to attach', function()
    return gantry.client(0, false)
  end)
  wait_for('the first review', function()
    return gantry.status() and gantry.status().state == 'ready'
  end)
  vim.cmd('silent write')
  local d = wait_for('a gantry-ai diagnostic', function()
    return ai_diagnostics()[1]
  end, 60000, function()
    return vim.inspect(vim.diagnostic.get(0)) .. ' ' .. vim.inspect(gantry.status())
  end)
  check(d.lnum == 4 and d.code == 'bug', 'diagnostic %s', vim.inspect(d))
  check(d.message:find('Division by zero', 1, true), 'message %q', d.message)
  local provenance = d.user_data.lsp.data.provenance
  check(provenance.model == 'review-model' and provenance.endpoint == 'gpu-box', 'provenance %s', vim.inspect(provenance))
end)

test('hover over it shows where it came from', function()
  vim.api.nvim_win_set_cursor(0, { 5, 8 })
  local params = vim.lsp.util.make_position_params(0, 'utf-16')
  local answers = vim.lsp.buf_request_sync(0, 'textDocument/hover', params, h.WAIT) or {}
  local shown
  for _, answer in pairs(answers) do
    shown = answer.result and answer.result.contents.value or shown
  end
  check(shown, 'no hover: %s', vim.inspect(answers))
  local plain = shown:gsub('\\', '') -- Markdown escapes the model's words
  check(plain:find('Model: review-model at endpoint gpu-box', 1, true), 'hover %q', shown)
  check(plain:find('len(values) is 0 for an empty list', 1, true), 'no rationale in %q', shown)
end)

test("its fix applies through the code action and the buffer changes", function()
  vim.api.nvim_win_set_cursor(0, { 5, 4 })
  local titles = {}
  vim.lsp.buf.code_action({
    apply = true,
    filter = function(action)
      titles[#titles + 1] = action.title
      return action.title:find('Apply the suggested fix', 1, true) ~= nil
    end,
  })
  wait_for('the fix in the buffer', function()
    return vim.api.nvim_buf_get_lines(0, 4, 5, false)[1] == '    return total / len(values) if values else 0.0'
  end, nil, function()
    return vim.inspect(titles) .. ' ' .. vim.inspect(vim.api.nvim_buf_get_lines(0, 0, -1, false))
  end)
  check(vim.bo.modified, 'the fix is an edit for the user to save, not a write')
end)

h.finish()
