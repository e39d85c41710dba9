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

---A config's workspace folders: its `workspace_folders`, else its `root_dir`, else none.
---@param config vim.lsp.ClientConfig
---@return lsp.WorkspaceFolder[]
local function folders_of(config)
  if type(config.workspace_folders) == 'table' then
    return config.workspace_folders
  end
  if type(config.root_dir) == 'string' then
    return { { uri = vim.uri_from_fname(config.root_dir), name = config.root_dir } }
  end
  return {}
end

---Whether a running client's server takes workspace folders at run time
---(`workspace/didChangeWorkspaceFolders`).
---@param client vim.lsp.Client
---@return boolean
local function serves_folders(client)
  if not client.initialized then
    return false
  end
  local folders = vim.tbl_get(client.server_capabilities or {}, 'workspace', 'workspaceFolders') or {}
  return folders.supported == true and (folders.changeNotifications or false) ~= false
end

---`reuse_client` of `lsp/gantry.lua` (`:help gantry-workspaces`): one Gantry server for every
---project of the session. A buffer in a project the running client does not serve yet joins it:
---its root is added as a workspace folder (`workspace/didChangeWorkspaceFolders`, before the
---buffer's didOpen) and the server reviews it with that folder's settings and store. A buffer
---outside every project joins it too (the server gives it the user's and the editor's settings
---and writes nothing). A client with another command, one still starting or a server without
---run-time workspace folders is reused only as Neovim would: for a root it already serves.
---@param client vim.lsp.Client
---@param config vim.lsp.ClientConfig
---@return boolean
function M.reuse_client(client, config)
  if client.name ~= config.name or client:is_stopped() then
    return false
  end
  if not (vim.deep_equal(client.config.cmd, config.cmd) and vim.deep_equal(client.config.cmd_env, config.cmd_env)) then
    return false
  end
  local served = {}
  for _, folder in ipairs(client.workspace_folders or {}) do
    served[folder.uri] = true
  end
  local wanted = folders_of(config)
  local missing = vim.tbl_filter(function(folder)
    return not served[folder.uri]
  end, wanted)
  if #missing == 0 and (#wanted > 0 or next(served) == nil) then
    return true -- Neovim's own rule: every root of the buffer is served already
  end
  if not serves_folders(client) then
    return false
  end
  if #missing > 0 then
    client:notify('workspace/didChangeWorkspaceFolders', { event = { added = missing, removed = {} } })
    client.workspace_folders = vim.list_extend(client.workspace_folders or {}, missing)
  end
  return true
end

---The innermost of the client's workspace folders that holds the buffer's file; nil for a file
---outside them all and for a buffer that is not a file. The queue commands name it: one server
---may serve several projects, each with its own queue.
---@param client vim.lsp.Client
---@param bufnr? integer default: current buffer
---@return lsp.WorkspaceFolder?
function M.folder(client, bufnr)
  if bufnr == nil or bufnr == 0 then
    bufnr = vim.api.nvim_get_current_buf()
  end
  local name = vim.api.nvim_buf_get_name(bufnr)
  if name == '' or vim.bo[bufnr].buftype ~= '' then
    return nil
  end
  local path = vim.fs.normalize(vim.fn.fnamemodify(name, ':p'))
  local best, best_len
  for _, folder in ipairs(client.workspace_folders or {}) do
    local root = vim.fs.normalize(vim.uri_to_fname(folder.uri)):gsub('/+$', '')
    if (path == root or vim.startswith(path, root .. '/')) and (best_len == nil or #root > best_len) then
      best, best_len = folder, #root
    end
  end
  return best
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

local WINDOWS = vim.fn.has('win32') == 1
local SEP = WINDOWS and ';' or ':'

---{path} (default $PATH) without its relative entries ('', '.', 'bin'): they resolve against the
---current directory, usually the project, where a repository could plant its own `gantry`.
---@param path? string
---@return string
function M.safe_path(path)
  local dirs = vim.tbl_filter(function(dir)
    return vim.fn.isabsolutepath(dir) == 1
  end, vim.split(path or vim.env.PATH or '', SEP, { plain = true }))
  -- none left: an empty $PATH would mean the current directory to execvp, so its default
  return #dirs > 0 and table.concat(dirs, SEP) or '/usr/bin:/bin'
end

---The executable {name}: a path as given (the user's choice), a bare name from `safe_path()`.
---Unlike |exepath()|, never from the current directory (where Windows looks first).
---@param name string
---@return string?
function M.exepath(name)
  if name:find('/', 1, true) or (WINDOWS and name:find('\\', 1, true)) then
    return vim.fn.executable(name) == 1 and name or nil
  end
  for dir in vim.gsplit(M.safe_path(), SEP, { plain = true }) do
    local found = vim.fn.exepath(vim.fs.joinpath(dir, name))
    if found ~= '' then
      return found
    end
  end
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
