-- A minimal init for the tests (run with --clean, so no user directories): this plugin on
-- the runtimepath, nothing else of the user's.
local here = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h')
local plugin = vim.fn.fnamemodify(here, ':h')
vim.opt.runtimepath:prepend(plugin)
vim.opt.swapfile = false
vim.opt.shadafile = 'NONE'
vim.g.gantry_test_plugin_dir = plugin
