"""Shared test set-up: tests never touch the user's cache directory."""

from __future__ import annotations

import os
import tempfile

# Before anything computes a default path (platformdirs reads the XDG variables): the store
# (cache), the job queue (data), the gateway's journal (state) and the user's own settings and
# trusted workspaces (config) all go to a temporary home.
for variable in ("XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
    os.environ[variable] = tempfile.mkdtemp(prefix=f"gantry-test-{variable.lower()}-")

collect_ignore = ["data"]
"""Projects under data/ are inputs (test generation's fixture has a test suite of its own)."""
