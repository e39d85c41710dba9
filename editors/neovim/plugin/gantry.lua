-- Gantry's user commands. Cheap: the modules load when a command runs. `:help gantry`.
if vim.g.loaded_gantry or vim.fn.has('nvim-0.11') == 0 then
  return
end
vim.g.loaded_gantry = 1

local function cmd(name, fn, opts)
  vim.api.nvim_create_user_command(name, fn, opts)
end

cmd('GantryReview', function(o)
  require('gantry.commands').review(o.bang)
end, { bang = true, desc = 'Gantry: review this file again (! for the whole workspace)' })

cmd('GantryTests', function(o)
  require('gantry.commands').tests(o.range > 0 and { o.line1, o.line2 } or nil)
end, { range = true, desc = 'Gantry: generate tests for the function, method or class under the cursor (or the lines given)' })

cmd('GantryQueue', function()
  require('gantry.queue').open()
end, { desc = 'Gantry: the job queue and the remotes, in a floating window' })

cmd('GantryDismiss', function(o)
  require('gantry.commands').dismiss(o.bang, o.args)
end, { bang = true, nargs = '?', desc = 'Gantry: dismiss the finding under the cursor (! marks it as a false positive)' })

cmd('GantryRetry', function(o)
  require('gantry.commands').retry(tonumber(o.args))
end, { nargs = '?', desc = 'Gantry: retry a queued job by id, or every dead and parked one' })
