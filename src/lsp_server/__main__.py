import contextlib
import os
import sys

# `python -m` puts the working directory first on sys.path, and the server's is the workspace,
# whose own `json.py` or `random.py` would replace the standard library's. This takes it off for
# whoever starts us without -P. It cannot be enough, hence -P wherever Gantry starts the server:
# by the time this runs, the interpreter has already looked in that directory for runpy's imports
# (`types`, `functools`, `contextlib`, importlib) and for `lsp_server` itself.
if not sys.flags.safe_path:
    with contextlib.suppress(FileNotFoundError):  # no working directory: -m added none
        if sys.path and sys.path[0] == os.getcwd():
            del sys.path[0]

from lsp_server.cli import main

raise SystemExit(main())
