"""Several gateways in the settings: the user's configuration (or a trusted workspace) lists
them; the single `gateway` table stays a list of one; a repository cannot add one; `gantry doctor`
and `gantry/status` show each one's health and capacity (real gateways on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import attrs
import pytest
from gateway_harness import TOKEN, free_port, make_config, serve_in_thread
from lsp_harness import SERVER, initialize
from lsprotocol import types

from lsp_server.config import load_settings
from lsp_server.remote_setup import dispatcher_config
from lsp_server.trust import TrustStore
from remote_exec.gateway.backends.local import LocalBackend
from remote_exec.sandbox import Sandbox
from remote_exec.settings import GatewayTarget

TOKEN_ENV = "TEST_GANTRY_GATEWAY_TOKEN"
TWO_GATEWAYS = """
[[execution.gateways]]
name = "h100-box"
url = "{a}"
token_env = "{env}"
labels = {{ gpu = "h100" }}

[[execution.gateways]]
name = "spare"
url = "{b}"
token_file = "~/spare-token"
"""


@pytest.fixture
def user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's own configuration file, in a home of this test's own."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    path = tmp_path / "config" / "gantry" / "config.toml"
    path.parent.mkdir(parents=True)
    return path


def test_gateways_from_the_users_configuration(tmp_path: Path, user_config: Path) -> None:
    user_config.write_text(
        TWO_GATEWAYS.format(a="http://127.0.0.1:9001", b="http://127.0.0.1:9002", env=TOKEN_ENV)
    )
    loaded = load_settings(tmp_path / "ws")
    assert loaded.problems == []
    targets = loaded.settings.execution.gateway_targets()
    assert targets == (
        GatewayTarget(
            url="http://127.0.0.1:9001",
            name="h100-box",
            token_env=TOKEN_ENV,
            labels={"gpu": "h100"},
        ),
        GatewayTarget(url="http://127.0.0.1:9002", name="spare", token_file="~/spare-token"),
    )
    assert dispatcher_config(tmp_path / "ws", loaded.settings).gateways == targets


def test_the_single_gateway_table_is_a_list_of_one(tmp_path: Path, user_config: Path) -> None:
    user_config.write_text('[execution.gateway]\nurl = "http://127.0.0.1:9001"\n')
    loaded = load_settings(tmp_path / "ws")
    assert loaded.problems == []
    (only,) = loaded.settings.execution.gateway_targets()
    assert only == GatewayTarget(url="http://127.0.0.1:9001")
    assert dispatcher_config(tmp_path / "ws", loaded.settings).gateways == (only,)

    # Both: the single one first, then the list; names stay unique.
    user_config.write_text(
        '[execution.gateway]\nurl = "http://127.0.0.1:9001"\n'
        '[[execution.gateways]]\nname = "more"\nurl = "http://127.0.0.1:9002"\n'
    )
    names = [t.name for t in load_settings(tmp_path).settings.execution.gateway_targets()]
    assert names == ["gateway", "more"]


def test_invalid_gateways_are_reported_and_the_valid_ones_kept(
    tmp_path: Path, user_config: Path
) -> None:
    user_config.write_text("""
[[execution.gateways]]
name = "ok"
url = "http://127.0.0.1:9001"

[[execution.gateways]]
name = "no-url"

[[execution.gateways]]
name = "ok"
url = "http://127.0.0.1:9003"

[[execution.gateways]]
name = "bad-labels"
url = "http://127.0.0.1:9004"
labels = { gpus = 2 }

[[execution.gateways]]
name = "leaky"
url = "http://127.0.0.1:9005"
token = "s3cret-token-in-a-settings-file"
""")
    loaded = load_settings(tmp_path / "ws")
    problems = "\n".join(loaded.problems)
    assert "execution.gateways[1]: missing url; ignored" in problems
    assert "another gateway is named 'ok'" in problems
    assert "execution.gateways[3].labels: invalid value {'gpus': 2}" in problems
    assert "execution.gateways[4].token: secrets are never settings" in problems
    assert "s3cret" not in problems
    names = [t.name for t in loaded.settings.execution.gateway_targets()]
    assert names == ["ok", "bad-labels", "leaky"]  # each bad value cost only itself
    assert loaded.settings.execution.gateways[1].labels == {}


def test_an_untrusted_workspace_cannot_add_gateways(tmp_path: Path, user_config: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "pyproject.toml").write_text(
        "[[tool.gantry.execution.gateways]]\n"
        'name = "theirs"\nurl = "http://127.0.0.1:9009"\ntoken_env = "AWS_SECRET_ACCESS_KEY"\n'
    )
    trust = TrustStore(tmp_path / "trusted.json")
    loaded = load_settings(ws, trust_store=trust)
    assert loaded.settings.execution.gateway_targets() == ()
    assert loaded.withheld == ["execution.gateways"]
    message = loaded.withheld_message()
    assert "sets execution.gateways, which only a trusted workspace may set" in message
    assert f"gantry trust {ws}" in message and "ignored" in message

    trust.trust(loaded.source, _raw_table(ws))
    trusted = load_settings(ws, trust_store=trust)
    assert [t.name for t in trusted.settings.execution.gateway_targets()] == ["theirs"]


def _raw_table(ws: Path) -> dict:
    from lsp_server.config import read_project_settings

    return read_project_settings(ws, [])[1]


# -- gantry doctor and gantry/status ---------------------------------------------------------


def gateway_in_thread(state: Path, *, slots: int, gpus: list[str], drain: bool = False):
    config = attrs.evolve(make_config(state), drain_file=state / "drain")
    if drain:
        state.mkdir(parents=True, exist_ok=True)
        (state / "drain").touch()
    return serve_in_thread(
        config, LocalBackend(Sandbox(), config.work_root, max_concurrency=slots, gpus=gpus)
    )


def test_doctor_shows_every_gateways_health_and_capacity(tmp_path: Path, user_config: Path):
    dead = f"http://127.0.0.1:{free_port()}"
    with (
        gateway_in_thread(tmp_path / "a", slots=3, gpus=["gpu0", "gpu1"]) as a,
        gateway_in_thread(tmp_path / "b", slots=1, gpus=[], drain=True) as b,
    ):
        user_config.write_text(f"""
[[execution.gateways]]
name = "a"
url = "{a}"
token_env = "{TOKEN_ENV}"
labels = {{ gpu = "h100" }}

[[execution.gateways]]
name = "b"
url = "{b}"
token_env = "{TOKEN_ENV}"

[[execution.gateways]]
name = "c"
url = "{dead}"
token_env = "{TOKEN_ENV}"
""")
        ws = tmp_path / "ws"
        ws.mkdir()
        result = subprocess.run(
            [sys.executable, "-m", "lsp_server", "doctor"],
            cwd=ws,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, TOKEN_ENV: TOKEN},
        )
    lines = {line[6:28].strip(): line for line in result.stdout.splitlines() if line[:1] != " "}
    assert lines["gateway a"].startswith("ok"), result.stdout
    assert (
        "3/3 slots and 2/2 GPUs free" in lines["gateway a"]
        and "labels gpu=h100" in lines["gateway a"]
    )
    assert lines["gateway b"].startswith("warn") and "draining" in lines["gateway b"]
    assert lines["gateway c"].startswith("fail") and "is `gantry gateway` running" in result.stdout
    assert result.returncode == 1 and TOKEN not in result.stdout


async def test_gantry_status_shows_every_gateways_health_and_capacity(
    tmp_path: Path, user_config: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    dead = f"http://127.0.0.1:{free_port()}"
    with gateway_in_thread(tmp_path / "a", slots=2, gpus=["gpu0"]) as a:
        user_config.write_text(
            f'[execution]\nqueue = "{tmp_path / "queue.db"}"\n'
            f'[[execution.gateways]]\nname = "a"\nurl = "{a}"\ntoken_env = "{TOKEN_ENV}"\n'
            'labels = { gpu = "h100" }\n'
            f'[[execution.gateways]]\nname = "c"\nurl = "{dead}"\ntoken_env = "{TOKEN_ENV}"\n'
        )
        ws = tmp_path / "ws"
        ws.mkdir()
        (ws / "app.py").write_text("x = 1\n")
        client = await SERVER.start()
        try:
            await initialize(client, ws)

            async def both_known():
                while True:
                    if client.statuses:
                        shown = {g.name: g for g in getattr(client.statuses[-1], "gateways", [])}
                        if (
                            shown.keys() == {"a", "c"}
                            and shown["a"].health == "up"
                            and (shown["c"].health == "down")
                        ):
                            return shown
                    await client.wait_for_notification("gantry/status")

            shown = await asyncio.wait_for(both_known(), 60)
            assert (shown["a"].slots, shown["a"].freeSlots) == (2, 2)
            assert (shown["a"].gpus, shown["a"].freeGpus) == (1, 1)
            assert shown["a"].labels.gpu == "h100"
            # Unknown until it answers: left out, as every None is.
            assert getattr(shown["c"], "slots", None) is None
            assert client.statuses[-1].remotes.c == "down"
            params = types.ExecuteCommandParams(command="gantry.queueStatus", arguments=[])
            listing = await asyncio.wait_for(client.workspace_execute_command_async(params), 30)
            listed = {g["name"]: g for g in listing["gateways"]}
            assert listed["a"]["health"] == "up" and listed["a"]["free_gpus"] == 1
            assert listed["c"]["health"] == "down"
            await client.shutdown_session()
        finally:
            await asyncio.wait_for(client.stop(), 30)
