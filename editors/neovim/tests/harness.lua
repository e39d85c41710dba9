-- The tests' harness: one line per test, bounded waits, and a last line exactly
-- "N passed, N failed"; finish() stops the clients and exits non-zero on any failure.
local M = { passed = 0, failed = 0, WAIT = tonumber(vim.env.GANTRY_NVIM_WAIT_MS) or 15000 }

function M.out(line)
  io.stdout:write(line .. '\n')
  io.stdout:flush()
end

function M.test(name, fn)
  local started = vim.uv.hrtime()
  local ok, err = xpcall(fn, debug.traceback)
  local ms = (vim.uv.hrtime() - started) / 1e6
  if ok then
    M.passed = M.passed + 1
    M.out(('ok   %s (%d ms)'):format(name, ms))
  else
    M.failed = M.failed + 1
    M.out(('FAIL %s (%d ms)\n%s'):format(name, ms, tostring(err)))
  end
end

-- Wait (bounded) until cond() returns a true value, and return it; on a timeout, fail with
-- `what` and, when given, seen(): what there was instead.
function M.wait_for(what, cond, ms, seen)
  local last
  local ok = vim.wait(ms or M.WAIT, function()
    local good, value = pcall(cond)
    last = good and value or last
    return good and value and true or false
  end, 20)
  if not ok then
    local saw = seen and ('\n  saw: ' .. tostring(seen())) or ''
    error(('timed out after %d ms waiting for %s%s'):format(ms or M.WAIT, what, saw), 2)
  end
  return last
end

function M.check(cond, msg, ...)
  if not cond then
    error(msg:format(...), 2)
  end
end

function M.finish()
  M.out(('%d passed, %d failed'):format(M.passed, M.failed))
  for _, c in ipairs(vim.lsp.get_clients()) do
    c:stop()
  end
  vim.wait(3000, function()
    return #vim.lsp.get_clients() == 0
  end, 20)
  vim.cmd(M.failed == 0 and 'qall!' or 'cquit! 1')
end

return M
