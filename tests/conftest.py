"""Shared test set-up: tests never touch the user's cache directory."""

from __future__ import annotations

import os
import tempfile

# Before anything computes a default store path (platformdirs reads XDG_CACHE_HOME).
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="gantry-test-cache-")
