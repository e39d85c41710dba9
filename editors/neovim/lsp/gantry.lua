---@brief
---
--- Gantry: an engineering assistant in a language server (review as you type, fixes,
--- verdicts that stick). https://github.com/ (this repository), `:help gantry`.
---
--- Install the server (`pip install gantry-lsp`, which provides `gantry serve`), then:
---
--- ```lua
--- vim.lsp.enable('gantry')
--- ```
---
--- Settings go under `settings.gantry` (camelCase or snake_case keys; see `:help gantry-settings`).
--- They override `[tool.gantry]` in pyproject.toml / gantry.toml. Secrets are never settings:
--- name an environment variable (`tokenEnv`, `apiKeyEnv`) or a file instead. The plugin reads
--- nothing from the project (`:help gantry-trust`).
---
--- ```lua
--- vim.lsp.config('gantry', {
---   settings = {
---     gantry = {
---       ruff = { extendSelect = { 'B' } },
---       severity = { E = 'info' },
---     },
---   },
--- })
--- ```

-- Settings that are objects. An empty Lua table is encoded as `[]`, which the server rejects
-- ("expected an object"), so empty ones are sent as `{}`.
local OBJECTS = { severity = true, ruff = true, index = true, inference = true, execution = true, gateway = true }

---@param value table
local function objects(value)
  if next(value) == nil then
    return vim.empty_dict()
  end
  for key, item in pairs(value) do
    if type(key) == 'string' and OBJECTS[key] and type(item) == 'table' then
      value[key] = objects(item)
    end
  end
  return value
end

local gantry = require('gantry')

---@type vim.lsp.Config
return {
  -- The user's `gantry`, never the project's: $PATH without its relative entries, for this
  -- lookup and for the server's own (ruff), since both would resolve them in the project.
  cmd = { gantry.exepath('gantry') or 'gantry', 'serve' },
  cmd_env = { PATH = gantry.safe_path() },
  -- Python, and the languages the server reviews with a model (AI review): the model may be
  -- configured where the plugin cannot see it (the user's config file), and without one the
  -- server reviews nothing in them, quietly. Narrow it with vim.lsp.config('gantry', { filetypes = ... }).
  filetypes = { 'python', 'javascript', 'javascriptreact', 'typescript', 'typescriptreact', 'go', 'rust' },
  root_markers = { 'pyproject.toml', 'gantry.toml', '.git' },
  -- One server for every project of the session: another project's root joins the running
  -- client as a workspace folder, with its own settings and store (`:help gantry-workspaces`).
  -- No `workspace_required`: a file outside every project gets the user's and the editor's
  -- settings, and nothing is written for it.
  reuse_client = gantry.reuse_client,
  settings = {
    gantry = vim.empty_dict(),
  },
  before_init = function(_, config)
    config.settings = config.settings or {}
    config.settings.gantry = objects(config.settings.gantry or {})
  end,
  handlers = {
    -- Gantry's one custom notification: the statusline component (`:help gantry-statusline`).
    ['gantry/status'] = function(_, params, ctx)
      local ok, status = pcall(require, 'gantry.status')
      if ok then
        status.update(ctx.client_id, params)
      end
    end,
    -- Remember what the server said about settings for `:checkhealth gantry`.
    ['window/showMessage'] = function(err, params, ctx)
      local ok, status = pcall(require, 'gantry.status')
      if ok then
        status.message(ctx.client_id, params)
      end
      return vim.lsp.handlers['window/showMessage'](err, params, ctx)
    end,
  },
}
