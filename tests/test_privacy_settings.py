"""inference.exclude: every settings layer adds globs (a workspace may only keep more at home), and
they reach the dispatcher's outbound policy."""

from __future__ import annotations

from pathlib import Path

from lsp_server.config import load_settings, user_config_path
from lsp_server.remote_setup import dispatcher_config
from lsp_server.trust import TrustStore
from remote_exec.inference import is_excluded


def test_every_layer_adds_excluded_globs(tmp_path: Path) -> None:
    user = user_config_path()
    user.parent.mkdir(parents=True, exist_ok=True)
    user.write_text('[inference]\nexclude = ["*.sqlite"]\n')
    try:
        (tmp_path / "pyproject.toml").write_text(
            '[tool.gantry.inference]\nexclude = ["secrets/", "!.env"]\n'
        )
        loaded = load_settings(
            tmp_path,
            {"inference": {"exclude": ["private/**", "*.sqlite"]}},
            trust_store=TrustStore(tmp_path / "trusted.json"),
        )
    finally:
        user.unlink()

    assert loaded.problems == [] and loaded.withheld == []  # an untrusted workspace may set it
    globs = loaded.settings.inference.exclude
    assert globs == ["*.sqlite", "secrets/", "!.env", "private/**"]
    policy = dispatcher_config(tmp_path, loaded.settings).outbound
    assert policy.exclude == tuple(globs) and policy.privacy == "self-hosted-only"
    assert is_excluded("secrets/prod.txt", policy.exclude)
    assert is_excluded("data/app.sqlite", policy.exclude)
    assert is_excluded(".env", policy.exclude)  # the workspace's "!.env" lets nothing through


def test_a_workspace_cannot_empty_the_users_globs(tmp_path: Path) -> None:
    user = user_config_path()
    user.parent.mkdir(parents=True, exist_ok=True)
    user.write_text('[inference]\nexclude = ["customer-data/"]\n')
    try:
        (tmp_path / "gantry.toml").write_text("[inference]\nexclude = []\n")
        loaded = load_settings(tmp_path, trust_store=TrustStore(tmp_path / "trusted.json"))
    finally:
        user.unlink()
    assert loaded.settings.inference.exclude == ["customer-data/"]
