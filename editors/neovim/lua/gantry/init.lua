--- Gantry for Neovim >= 0.11. `:help gantry`.
local M = {}

M.name = 'gantry'

---@class gantry.Opts: vim.lsp.Config
---@field enable? boolean start the server for matching buffers (default true)

---Configure and enable the Gantry language server. Every field except `enable` is a
---`vim.lsp.Config` field merged over `lsp/gantry.lua` (cmd, filetypes, root_markers,
---settings, on_attach, ...).
---@param opts? gantry.Opts
function M.setup(opts)
  if not vim.g.loaded_gantry then
    -- on the runtimepath after start-up (a plugin manager's `config`): define the commands now
    vim.cmd.runtime('plugin/gantry.lua')
  end
  opts = vim.deepcopy(opts or {})
  local enable = opts.enable ~= false
  opts.enable = nil
  if next(opts) ~= nil then
    vim.lsp.config(M.name, opts)
  end
  vim.lsp.enable(M.name, enable)
  if enable and vim.v.vim_did_enter == 0 then
    -- during start-up (a plugin manager loading us on FileType) vim.lsp.enable does not look
    -- at buffers already open: attach to them too
    for _, buf in ipairs(vim.api.nvim_list_bufs()) do
      if vim.api.nvim_buf_is_loaded(buf) and vim.bo[buf].filetype ~= '' then
        pcall(vim.api.nvim_exec_autocmds, 'FileType', { group = 'nvim.lsp.enable', buffer = buf, modeline = false })
      end
    end
  end
end

---The Gantry client attached to a buffer; with `any`, else the first running Gantry client.
---@param bufnr? integer default: current buffer
---@param any? boolean fall back to a client not attached to the buffer
---@return vim.lsp.Client?
function M.client(bufnr, any)
  if bufnr == nil or bufnr == 0 then
    bufnr = vim.api.nvim_get_current_buf()
  end
  local clients = vim.lsp.get_clients({ bufnr = bufnr, name = M.name })
  if clients[1] == nil and any ~= false then
    clients = vim.lsp.get_clients({ name = M.name })
  end
  return clients[1]
end

---Every running Gantry client.
---@return vim.lsp.Client[]
function M.clients()
  return vim.lsp.get_clients({ name = M.name })
end

---Whether a client's server offers an executeCommand command, checked at run time.
---@param client vim.lsp.Client
---@param command string
---@return boolean
function M.offers(client, command)
  local provider = (client.server_capabilities or {}).executeCommandProvider
  local commands = type(provider) == 'table' and provider.commands or {}
  return vim.list_contains(commands, command)
end

---Run a `gantry.*` command on the server.
---@param client vim.lsp.Client
---@param command string
---@param arguments? any[]
---@param callback? fun(err: lsp.ResponseError?, result: any)
---@param bufnr? integer
function M.execute(client, command, arguments, callback, bufnr)
  client:request('workspace/executeCommand', { command = command, arguments = arguments }, function(err, result)
    if callback then
      callback(err, result)
    end
  end, bufnr)
end

---@param msg string
---@param level? integer
function M.notify(msg, level)
  vim.notify('Gantry: ' .. msg, level or vim.log.levels.INFO, { title = 'Gantry' })
end

---Statusline component (`:help gantry-statusline`).
---@param bufnr? integer
---@return string
function M.statusline(bufnr)
  return require('gantry.status').statusline(bufnr)
end

---The status last reported by the buffer's server (`gantry/status`), or nil.
---@param bufnr? integer
function M.status(bufnr)
  return (require('gantry.status').get(bufnr))
end

return M
