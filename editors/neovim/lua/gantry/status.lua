--- The `gantry/status` notification, kept per client, and the statusline component.
local M = {}

---@class gantry.Status
---@field state 'ready'|'busy'|'queued'|'degraded'|'offline'
---@field message string
---@field counts table<string, integer>
---@field remotes table<string, 'up'|'down'|'probing'>

---@type table<integer, gantry.Status>
M.by_client = {}
---@type table<integer, string[]> messages the server showed, per client (for :checkhealth)
M.messages = {}

---@param client_id integer
---@param params gantry.Status
function M.update(client_id, params)
  if type(params) ~= 'table' then
    return
  end
  M.by_client[client_id] = params
  vim.schedule(function()
    vim.api.nvim_exec_autocmds('User', { pattern = 'GantryStatus', modeline = false, data = { client_id = client_id, status = params } })
    pcall(vim.cmd.redrawstatus, { bang = true })
  end)
end

---@param client_id integer
---@param params lsp.ShowMessageParams
function M.message(client_id, params)
  if type(params) == 'table' and type(params.message) == 'string' then
    local list = M.messages[client_id] or {}
    list[#list + 1] = params.message
    if #list > 50 then
      table.remove(list, 1)
    end
    M.messages[client_id] = list
  end
end

---@param client_id integer
function M.forget(client_id)
  M.by_client[client_id] = nil
  M.messages[client_id] = nil
end

---Names of the remotes reported down, sorted.
---@param status gantry.Status
---@return string[]
function M.down(status)
  local names = {}
  for name, health in pairs(type(status.remotes) == 'table' and status.remotes or {}) do
    if health == 'down' then
      names[#names + 1] = name
    end
  end
  table.sort(names)
  return names
end

---A short text for a status: "ready", "reviewing", "3 queued", "remote gpu-box down", ...
---@param status gantry.Status
---@return string
function M.describe(status)
  local counts = type(status.counts) == 'table' and status.counts or {}
  local parts = {}
  local state = status.state
  if state == 'busy' then
    if (counts.reviewing or 0) > 0 then
      parts[#parts + 1] = 'reviewing'
    elseif (counts.indexing or 0) > 0 then
      parts[#parts + 1] = 'indexing'
    else
      parts[#parts + 1] = 'starting'
    end
  elseif state == 'ready' then
    parts[#parts + 1] = 'ready'
  elseif state == 'offline' then
    parts[#parts + 1] = 'offline'
  elseif state == 'degraded' then
    parts[#parts + 1] = 'degraded'
  end
  local queued = counts.queued or 0
  if queued > 0 or state == 'queued' then
    parts[#parts + 1] = ('%d queued'):format(queued)
  end
  local down = M.down(status)
  if #down > 0 then
    parts[#parts + 1] = ('remote %s down'):format(table.concat(down, ', '))
  end
  if #parts == 0 then
    parts[1] = tostring(state or 'unknown')
  end
  return table.concat(parts, ', ')
end

---The status of the Gantry client of a buffer (or of any Gantry client).
---@param bufnr? integer
---@return gantry.Status?, vim.lsp.Client?
function M.get(bufnr)
  local client = require('gantry').client(bufnr)
  if not client then
    return nil, nil
  end
  return M.by_client[client.id], client
end

---Statusline component: "Gantry: ready", "Gantry: reviewing", "Gantry: 3 queued",
---"Gantry: offline, 2 queued, remote gpu-box down"; "" when no Gantry client runs.
---@param bufnr? integer
---@return string
function M.statusline(bufnr)
  local status, client = M.get(bufnr)
  if not client then
    return ''
  end
  if not status then
    return 'Gantry: starting'
  end
  return 'Gantry: ' .. M.describe(status)
end

return M
