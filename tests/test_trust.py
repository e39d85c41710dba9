"""Whose settings are trusted: a cloned repository cannot send secrets to a URL it chooses, run
its own programs or replace the user's files, in the editor's server or in CI; the user's own
configuration and `gantry trust` can."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from lsp_harness import SERVER, diagnostics_for, idle, initialize, open_document
from lsprotocol import types

from lsp_server.config import Settings, load_settings, store_path
from lsp_server.trust import TrustStore
from remote_exec.execution import ExecutionClient
from remote_exec.settings import Endpoint

SECRET = "aws-secret-0123456789abcdef"
GATEWAY_TOKEN = "gantry-token-0123456789abcdef"
VICTIM = b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostile victim@laptop\n"


class Canary:
    """A loopback server that records every byte anyone sends it, and answers nothing useful."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    self.received.append(conn.recv(65536))
                    conn.sendall(b"HTTP/1.1 503 Nope\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    self.received.append(b"")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


@pytest.fixture
def canary():
    server = Canary()
    yield server
    server.close()


@pytest.fixture
def home(tmp_path: Path, monkeypatch) -> Path:
    """A user's home with a file worth stealing or clobbering, their secrets in the environment,
    and their own (empty) Gantry configuration."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "authorized_keys").write_bytes(VICTIM)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("GANTRY_GATEWAY_TOKEN", GATEWAY_TOKEN)
    return home


def hostile_repo(root: Path, canary_url: str, ran: Path) -> Path:
    """A repository whose settings try every way out: its own ruff, a gateway and an endpoint
    it controls fed with the user's credentials, and a store over the user's SSH keys."""
    (root / "tools").mkdir(parents=True)
    fake_ruff = root / "tools" / "ruff"
    fake_ruff.write_text(f"#!/bin/sh\ntouch {ran}\necho '[]'\n")
    fake_ruff.chmod(0o755)
    (root / "pyproject.toml").write_text(f"""
[tool.gantry]
store = "~/.ssh/authorized_keys"

[tool.gantry.ruff]
path = "./tools/ruff"
select = ["F"]

[tool.gantry.execution]
unsandboxed = true
queue = "../outside-queue.db"

[tool.gantry.execution.gateway]
url = "{canary_url}"
token_env = "AWS_SECRET_ACCESS_KEY"
token_file = "~/.ssh/authorized_keys"

[[tool.gantry.inference.endpoints]]
name = "evil"
base_url = "{canary_url}"
model = "m"
api_key_env = "AWS_SECRET_ACCESS_KEY"
privacy = "self-hosted"
""")
    (root / "app.py").write_text("import os\n")
    return root


def gantry(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lsp_server", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=dict(os.environ),
    )


def test_a_hostile_repository_gets_nothing(tmp_path: Path, home: Path, canary: Canary):
    ran = tmp_path / "fake-ruff-ran"
    repo = hostile_repo(tmp_path / "repo", canary.url, ran)

    check = gantry(repo, "check", "--fail-on", "warning")
    doctor = gantry(repo, "doctor")
    index = gantry(repo, "index", ".")
    queue = gantry(repo, "queue", "list")

    assert canary.received == []  # not one connection: no token, no key, no code
    assert (home / ".ssh" / "authorized_keys").read_bytes() == VICTIM
    assert sorted(p.name for p in (home / ".ssh").iterdir()) == ["authorized_keys"]
    assert not ran.exists()
    assert not (tmp_path / "outside-queue.db").exists()
    # Gantry's own ruff still reviewed the code, and said what it ignored and how to trust it.
    assert check.returncode == 1 and "F401" in check.stdout, check.stderr
    for result in (check, doctor, index, queue):
        output = result.stdout + result.stderr
        assert "execution.gateway" in output and "ruff.path" in output, output
        assert "gantry trust" in output
        assert SECRET not in output and GATEWAY_TOKEN not in output
    assert "store" in check.stderr and "inference.endpoints" in check.stderr


def test_the_users_own_configuration_is_trusted(tmp_path: Path, home: Path, canary: Canary):
    """The positive control: the same gateway from the user's config file is used, with the
    token the user named."""
    config = home / ".config" / "gantry" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[execution.gateway]\nurl = "{canary.url}"\n')
    repo = tmp_path / "repo"
    repo.mkdir()
    gantry(repo, "doctor")
    assert any(f"Bearer {GATEWAY_TOKEN}".encode() in data for data in canary.received)


def test_gantry_trust_grants_the_settings_as_they_are_now(
    tmp_path: Path, home: Path, canary: Canary
):
    repo = tmp_path / "repo"
    repo.mkdir()
    settings = f'[tool.gantry.execution.gateway]\nurl = "{canary.url}"\n'
    (repo / "pyproject.toml").write_text(settings + "[project]\nname = 'x'\n")

    gantry(repo, "doctor")
    assert canary.received == []

    trusted = gantry(repo, "trust")
    assert trusted.returncode == 0 and "execution.gateway" in trusted.stdout
    gantry(repo, "doctor")
    assert len(canary.received) == 1

    # Editing the rest of pyproject.toml keeps the trust; editing Gantry's settings ends it.
    (repo / "pyproject.toml").write_text(settings + "[project]\nname = 'y'\n")
    gantry(repo, "doctor")
    assert len(canary.received) == 2
    (repo / "pyproject.toml").write_text(settings + 'token_env = "AWS_SECRET_ACCESS_KEY"\n')
    changed = gantry(repo, "doctor")
    assert len(canary.received) == 2
    assert "changed since you trusted it" in changed.stdout

    gantry(repo, "trust")
    assert gantry(repo, "trust", "--revoke").stdout.strip().endswith("no longer trusted.")
    gantry(repo, "doctor")
    assert len(canary.received) == 2
    assert all(SECRET.encode() not in data for data in canary.received)


def test_check_trust_workspace_is_for_ci_that_owns_its_repository(
    tmp_path: Path, home: Path, canary: Canary
):
    ran = tmp_path / "repo-ruff-ran"
    repo = tmp_path / "repo"
    (repo / "tools").mkdir(parents=True)
    (repo / "tools" / "ruff").write_text(f"#!/bin/sh\ntouch {ran}\necho '[]'\n")
    (repo / "tools" / "ruff").chmod(0o755)
    (repo / "pyproject.toml").write_text('[tool.gantry.ruff]\npath = "./tools/ruff"\n')
    (repo / "app.py").write_text("import os\n")

    assert gantry(repo, "check").returncode == 0 and not ran.exists()  # bundled ruff: F401 is info
    gantry(repo, "check", "--trust-workspace")
    assert ran.exists()


@pytest.mark.parametrize(
    ("store", "layout"),
    [
        ("~/.ssh/authorized_keys", {}),
        ("../victim", {}),
        ("/tmp/elsewhere.db", {}),
        ("link/gantry.db", {"link": "home"}),
        ("gantry.db", {"gantry.db": "victim"}),
        ("gantry.db", {"gantry.db.verdicts.jsonl": "victim"}),
        ("gantry.db", {"gantry.db-wal": "victim"}),
    ],
)
def test_paths_outside_the_workspace_are_withheld(
    tmp_path: Path, home: Path, store: str, layout: dict[str, str]
):
    repo = tmp_path / "repo"
    repo.mkdir()
    targets = {"home": home, "victim": home / ".ssh" / "authorized_keys"}
    for name, target in layout.items():
        (repo / name).symlink_to(targets[target])
    (repo / "gantry.toml").write_text(f'store = "{store}"\n[execution]\nqueue = "{store}"\n')
    loaded = load_settings(repo)
    assert loaded.withheld == ["store", "execution.queue"]
    assert loaded.settings.store is None and loaded.settings.execution.queue is None
    assert store_path(repo, loaded.settings).is_relative_to(home / ".cache")


def test_paths_inside_the_workspace_and_default_values_need_no_trust(tmp_path: Path, home):
    (tmp_path / "gantry.toml").write_text(
        'store = ".gantry/store.db"\n'
        "[execution]\nunsandboxed = false\nqueue = 'q.db'\n"
        '[inference]\nprivacy = "self-hosted-only"\nendpoints = []\n'
        "[ruff]\nextend_select = ['B']\n"
    )
    loaded = load_settings(tmp_path)
    assert loaded.withheld == [] and loaded.problems == []
    assert store_path(tmp_path, loaded.settings) == tmp_path / ".gantry" / "store.db"
    assert loaded.settings.ruff.extend_select == ["B"]


def test_editor_settings_are_the_users(tmp_path: Path, home):
    """Editors keep workspace-level values of these keys out of what they send (VS Code:
    machine scope and restrictedConfigurations; the Neovim plugin reads nothing from the
    project), so what arrives is the user's own."""
    loaded = load_settings(
        tmp_path, {"ruff": {"path": "/opt/ruff"}, "execution": {"unsandboxed": True}}
    )
    assert loaded.settings.ruff.path == "/opt/ruff" and loaded.settings.execution.unsandboxed


@pytest.mark.parametrize(
    "url", ["http://user:hunter2@127.0.0.1:9", "http://:hunter2@h", "ftp://h", "h:80", ""]
)
def test_urls_with_credentials_are_refused_everywhere(tmp_path: Path, home, url: str):
    loaded = load_settings(
        tmp_path,
        {
            "execution": {"gateway": {"url": url}},
            "inference": {"endpoints": [{"name": "e", "base_url": url, "model": "m"}]},
        },
    )
    assert loaded.settings.execution.gateway is None
    assert loaded.settings.inference.endpoints == []
    joined = "\n".join(loaded.problems)
    assert "gateway.url" in joined and "endpoints[0].base_url" in joined
    assert "hunter2" not in joined
    with pytest.raises(ValueError, match="URL") as refused:
        ExecutionClient(url, "token")
    assert "hunter2" not in str(refused.value)
    with pytest.raises(ValueError, match="URL"):
        Endpoint(name="e", base_url=url, model="m")


def test_a_damaged_trust_record_trusts_nothing(tmp_path: Path):
    store = TrustStore(tmp_path / "trusted.json")
    source = tmp_path / "gantry.toml"
    source.write_text("")
    store.trust(source, {"ruff": {"path": "x"}})
    assert store.state(source, {"ruff": {"path": "x"}}) == "trusted"
    assert store.state(source, {"ruff": {"path": "y"}}) == "changed"
    assert (store.path.stat().st_mode & 0o777) == 0o600
    store.path.write_text("{not json")
    assert store.state(source, {"ruff": {"path": "x"}}) == "untrusted"
    assert load_settings(tmp_path, trust_store=store).settings == Settings()


async def test_the_editor_is_told_once_what_the_workspace_may_not_set(
    tmp_path: Path, home: Path, canary: Canary
):
    ran = tmp_path / "fake-ruff-ran"
    repo = hostile_repo(tmp_path / "repo", canary.url, ran)
    client = await SERVER.start()
    try:
        await initialize(client, repo)
        await idle(client)
        uri = open_document(client, repo / "app.py")
        assert [d.code for d in await diagnostics_for(client, uri, 1)] == ["F401"]
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
        await idle(client)
        notices = [m.message for m in client.messages if "gantry trust" in m.message]
        assert len(notices) == 1 and "ruff.path" in notices[0], client.messages
        await client.shutdown_session()
    finally:
        await client.stop()
    assert canary.received == [] and not ran.exists()
    assert (home / ".ssh" / "authorized_keys").read_bytes() == VICTIM


def test_ruff_on_path_is_never_the_repositorys(tmp_path: Path, monkeypatch):
    """Without a bundled ruff, `ruff` is looked up on $PATH, but never through a relative entry,
    which would mean the workspace the server runs in."""
    from lsp_server.review import ruff_engine

    (tmp_path / "ruff").write_text("#!/bin/sh\n")
    (tmp_path / "ruff").chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sysconfig.get_path", lambda _name: str(tmp_path / "no-scripts"))
    monkeypatch.setenv("PATH", os.pathsep.join([".", "", str(tmp_path / "empty")]))
    with pytest.raises(ruff_engine.RuffUnavailable):
        ruff_engine.find_ruff(Settings())
