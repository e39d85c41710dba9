"""Shared test set-up: tests never touch the user's cache directory."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Before anything computes a default path (platformdirs reads the XDG variables): the store
# (cache), the job queue (data), the gateway's journal (state) and the user's own settings and
# trusted workspaces (config) all go to a temporary home.
for variable in ("XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
    os.environ[variable] = tempfile.mkdtemp(prefix=f"gantry-test-{variable.lower()}-")

collect_ignore = ["data"]
"""Projects under data/ are inputs (test generation's fixture has a test suite of its own)."""

sys.path.insert(0, str(Path(__file__).parent / "remote"))
from fake_messages_api import FakeMessagesAPI


@pytest.fixture
def api() -> Iterator[FakeMessagesAPI]:
    """The scripted Messages-API server on loopback: the only stand-in for a model."""
    with FakeMessagesAPI() as server:
        yield server
