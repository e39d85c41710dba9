"""`python -m lsp_server.cli`: the `gantry` command, as `python -m lsp_server` runs it (without
its guard against the working directory shadowing the standard library)."""

from lsp_server.cli import main

raise SystemExit(main())
