--- `:GantryQueue`: a floating window with the job queue and the remotes' health.
local gantry = require('gantry')

local M = {}

---@type { buf: integer?, win: integer?, client_id: integer?, uri: string?, jobs_at: table? }
M.current = {}

local function ago(ts)
  if type(ts) ~= 'number' then
    return ''
  end
  local s = math.max(0, os.time() - ts)
  if s < 60 then
    return ('%ds ago'):format(s)
  elseif s < 3600 then
    return ('%dm ago'):format(math.floor(s / 60))
  end
  return ('%dh ago'):format(math.floor(s / 3600))
end

---Lines for a `gantry.queueStatus` result (or an error).
---@param result table?
---@param err lsp.ResponseError?
---@return string[], table<integer, integer> lines and job id by line number
function M.render(result, err)
  local lines, jobs_at = { 'Gantry queue', '' }, {}
  if err then
    lines[#lines + 1] = 'The queue is not available: ' .. (err.message or vim.inspect(err))
    return lines, jobs_at
  end
  result = result or {}
  local state, message = tostring(result.state or '?'), result.message
  if type(message) ~= 'string' or message == '' or message:lower() == state:lower() then
    message = nil
  end
  lines[#lines + 1] = ('State: %s%s'):format(state, message and (' - ' .. message) or '')
  lines[#lines + 1] = ''
  lines[#lines + 1] = 'Remotes:'
  local names = vim.tbl_keys(type(result.remotes) == 'table' and result.remotes or {})
  table.sort(names)
  if #names == 0 then
    lines[#lines + 1] = '  none configured: everything runs locally'
  end
  for _, name in ipairs(names) do
    lines[#lines + 1] = ('  %-24s %s'):format(name, result.remotes[name])
  end
  local counts = type(result.counts) == 'table' and result.counts or {}
  local keys = vim.tbl_keys(counts)
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    parts[#parts + 1] = ('%s %s'):format(k, tostring(counts[k]))
  end
  lines[#lines + 1] = ''
  lines[#lines + 1] = 'Counts: ' .. (#parts > 0 and table.concat(parts, ', ') or 'none')
  lines[#lines + 1] = ''
  local jobs = type(result.jobs) == 'table' and result.jobs or {}
  if #jobs == 0 then
    lines[#lines + 1] = 'No jobs.'
  else
    lines[#lines + 1] = ('%-6s %-9s %-14s %-8s %-10s %s'):format('id', 'state', 'kind', 'tries', 'updated', 'key / error')
    for _, job in ipairs(jobs) do
      local detail = tostring(job.key or '')
      if job.error and job.error ~= vim.NIL and job.error ~= '' then
        detail = detail .. ' - ' .. tostring(job.error)
      end
      if type(job.notBefore) == 'number' then
        detail = detail .. (' (retry at %s)'):format(os.date('%H:%M:%S', math.floor(job.notBefore)))
      end
      lines[#lines + 1] = ('%-6s %-9s %-14s %-8s %-10s %s'):format(
        tostring(job.id), tostring(job.state), tostring(job.kind),
        ('%s/%s'):format(tostring(job.attempts or 0), tostring(job.maxAttempts or '?')),
        ago(job.updatedAt), detail)
      jobs_at[#lines] = job.id
    end
  end
  lines[#lines + 1] = ''
  lines[#lines + 1] = 'r: retry the job under the cursor (all dead and parked ones elsewhere)  R: refresh  q: close'
  return lines, jobs_at
end

local function close()
  if M.current.win and vim.api.nvim_win_is_valid(M.current.win) then
    vim.api.nvim_win_close(M.current.win, true)
  end
  M.current = {}
end

---@param lines string[]
---@param jobs_at table<integer, integer>
---@param client vim.lsp.Client
---@param uri string? the workspace folder whose queue this is
local function show(lines, jobs_at, client, uri)
  local buf = M.current.buf
  if not (buf and vim.api.nvim_buf_is_valid(buf)) then
    buf = vim.api.nvim_create_buf(false, true)
    vim.bo[buf].bufhidden = 'wipe'
    vim.bo[buf].filetype = 'gantryqueue'
  end
  vim.bo[buf].modifiable = true
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].modifiable = false
  local width = 40
  for _, l in ipairs(lines) do
    width = math.max(width, vim.fn.strdisplaywidth(l))
  end
  width = math.min(width + 2, math.max(20, vim.o.columns - 4))
  local height = math.min(#lines, math.max(3, vim.o.lines - 6))
  local config = {
    relative = 'editor',
    width = width,
    height = height,
    row = math.floor((vim.o.lines - height) / 2) - 1,
    col = math.floor((vim.o.columns - width) / 2),
    style = 'minimal',
    border = 'rounded',
    title = uri and (' Gantry queue: %s '):format(vim.fs.basename(vim.uri_to_fname(uri))) or ' Gantry queue ',
    title_pos = 'center',
  }
  local win = M.current.win
  if win and vim.api.nvim_win_is_valid(win) then
    vim.api.nvim_win_set_config(win, config)
  else
    win = vim.api.nvim_open_win(buf, true, config)
  end
  M.current = { buf = buf, win = win, client_id = client.id, uri = uri, jobs_at = jobs_at }
  local function map(lhs, rhs)
    vim.keymap.set('n', lhs, rhs, { buffer = buf, nowait = true, silent = true })
  end
  map('q', close)
  map('<Esc>', close)
  map('R', function()
    M.open(client, uri)
  end)
  map('r', function()
    local id = (M.current.jobs_at or {})[vim.api.nvim_win_get_cursor(0)[1]]
    gantry.execute(client, 'gantry.retryQueued', { M.args({ id = id }, uri) }, function(err, result)
      if err then
        gantry.notify('retry failed: ' .. (err.message or ''), vim.log.levels.ERROR)
      else
        gantry.notify(('retried %d job(s)'):format((result or {}).retried or 0))
      end
      M.open(client, uri)
    end)
  end)
end

---A queue command's argument: {args} with `uri` (a workspace folder) when given; `{}` when
---empty (the server's first folder).
---@param args table
---@param uri string?
---@return table
function M.args(args, uri)
  args.uri = uri
  return next(args) ~= nil and args or vim.empty_dict()
end

---Open (or refresh) the queue window for a client (default: the current buffer's), showing the
---queue of workspace folder {uri} (default: the current buffer's folder, else the server's first).
---@param client? vim.lsp.Client
---@param uri? string
function M.open(client, uri)
  client = client or gantry.client(nil, true)
  if not client then
    gantry.notify('no Gantry server is running (`:checkhealth gantry`)', vim.log.levels.WARN)
    return
  end
  if uri == nil then
    local folder = gantry.folder(client, 0)
    uri = folder and folder.uri
  end
  gantry.execute(client, 'gantry.queueStatus', { M.args({}, uri) }, function(err, result)
    vim.schedule(function()
      local lines, jobs_at = M.render(result, err)
      show(lines, jobs_at, client, uri)
    end)
  end)
end

return M
