--- The user commands' implementations (`:help gantry-commands`).
local gantry = require('gantry')

local M = {}

local WARN, ERROR = vim.log.levels.WARN, vim.log.levels.ERROR

---@param bufnr integer
---@param any? boolean
---@return vim.lsp.Client?
local function need_client(bufnr, any)
  local client = gantry.client(bufnr, any)
  if not client then
    gantry.notify(any and 'no Gantry server is running (`:checkhealth gantry`)'
      or 'this buffer has no Gantry server attached (`:checkhealth gantry`)', WARN)
  end
  return client
end

---@param err lsp.ResponseError?
local function failed(what, err)
  gantry.notify(('%s failed: %s'):format(what, err.message or vim.inspect(err)), ERROR)
end

---@param n integer
---@param word string
local function plural(n, word)
  return ('%d %s%s'):format(n, word, n == 1 and '' or 's')
end

---`:GantryReview` reviews the buffer's file again; `:GantryReview!` the whole workspace.
---@param workspace boolean
---@param bufnr? integer
function M.review(workspace, bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local client = need_client(bufnr, workspace)
  if not client then
    return
  end
  if workspace then
    gantry.notify('reviewing the workspace...')
    gantry.execute(client, 'gantry.reviewWorkspace', {}, function(err, result)
      if err then
        return failed('workspace review', err)
      end
      result = result or {}
      gantry.notify(('reviewed %s: %s'):format(plural(result.files or 0, 'file'), plural(result.findings or 0, 'finding')))
    end)
  else
    local uri = vim.uri_from_bufnr(bufnr)
    gantry.execute(client, 'gantry.reviewFile', { { uri = uri } }, function(err)
      if err then
        return failed('review', err)
      end
      gantry.notify('reviewing ' .. vim.fn.fnamemodify(vim.uri_to_fname(uri), ':~:.'))
    end, bufnr)
  end
end

M.TESTS_COMMAND = 'gantry.generateTests'

---The `gantry.generateTests` arguments for a buffer: the lines given (1-based, inclusive), else
---the cursor as an empty range, for which the server takes the function, method or class around
---it.
---@param bufnr integer
---@param lines? integer[] { first, last }
---@param encoding string the client's offset encoding
function M.tests_args(bufnr, lines, encoding)
  local range
  if lines then
    range = { start = { line = lines[1] - 1, character = 0 }, ['end'] = { line = lines[2], character = 0 } }
  else
    local at = vim.lsp.util.make_position_params(0, encoding).position
    range = { start = at, ['end'] = at }
  end
  return { uri = vim.uri_from_bufnr(bufnr), range = range }
end

---`:GantryTests`: tests for what is under the cursor, or for the lines of `:'<,'>GantryTests`.
---The server shows the stages as progress and says what it kept; the tests arrive as an edit.
---@param lines? integer[] { first, last }, 1-based
function M.tests(lines)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = need_client(bufnr)
  if not client then
    return
  end
  if not gantry.offers(client, M.TESTS_COMMAND) then
    gantry.notify(('test generation is not available: this Gantry server does not offer %s'):format(M.TESTS_COMMAND), WARN)
    return
  end
  local args = M.tests_args(bufnr, lines, client.offset_encoding)
  local where = lines and ('lines %d-%d'):format(lines[1], lines[2]) or ('line %d'):format(args.range.start.line + 1)
  gantry.notify(('generating tests for %s...'):format(where))
  gantry.execute(client, M.TESTS_COMMAND, { args }, function(err)
    if err then
      return failed('test generation', err)
    end
  end, bufnr)
end

---The Gantry diagnostic under the cursor: the one whose range holds the cursor, else the
---first on the cursor's line.
---@param bufnr? integer
---@param client? vim.lsp.Client
---@return vim.Diagnostic?
function M.diagnostic_at_cursor(bufnr, client)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local row, col = unpack(vim.api.nvim_win_get_cursor(0))
  row = row - 1
  local opts = {}
  if client then
    opts.namespace = vim.lsp.diagnostic.get_namespace(client.id, false)
  end
  local on_line, candidates = nil, {}
  for _, d in ipairs(vim.diagnostic.get(bufnr, opts)) do
    local lsp = d.user_data and d.user_data.lsp or {}
    local fingerprint = type(lsp.data) == 'table' and lsp.data.fingerprint or nil
    if d.source == 'gantry' and fingerprint and d.lnum <= row and row <= (d.end_lnum or d.lnum) then
      candidates[#candidates + 1] = d
    end
  end
  for _, d in ipairs(candidates) do
    local starts = d.lnum < row or d.col <= col
    local ends = (d.end_lnum or d.lnum) > row or col < math.max(d.end_col or d.col, d.col + 1)
    if starts and ends then
      return d
    end
    on_line = on_line or d
  end
  return on_line
end

---`:GantryDismiss` dismisses the finding under the cursor; `:GantryDismiss!` marks it as a
---false positive. A reason may follow.
---@param false_positive boolean
---@param reason? string
function M.dismiss(false_positive, reason)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = need_client(bufnr, false)
  if not client then
    return
  end
  local d = M.diagnostic_at_cursor(bufnr, client)
  if not d then
    gantry.notify('no Gantry finding under the cursor', WARN)
    return
  end
  local verdict = false_positive and 'false_positive' or 'dismissed'
  local args = { uri = vim.uri_from_bufnr(bufnr), fingerprint = d.user_data.lsp.data.fingerprint, verdict = verdict }
  if reason and reason ~= '' then
    args.reason = reason
  end
  gantry.execute(client, 'gantry.dismissFinding', { args }, function(err)
    if err then
      return failed('dismiss', err)
    end
    gantry.notify(('%s %s: %s'):format(false_positive and 'marked as a false positive' or 'dismissed', tostring(d.code or ''), d.message))
  end, bufnr)
end

---`:GantryRetry [id]`: retry one queued job, or every dead and parked one.
---@param id? integer
function M.retry(id)
  local client = need_client(vim.api.nvim_get_current_buf(), true)
  if not client then
    return
  end
  local folder = gantry.folder(client, 0)
  local args = require('gantry.queue').args({ id = id }, folder and folder.uri)
  gantry.execute(client, 'gantry.retryQueued', { args }, function(err, result)
    if err then
      return failed('retry', err)
    end
    gantry.notify(('retried %s'):format(plural((result or {}).retried or 0, 'job')))
  end)
end

return M
