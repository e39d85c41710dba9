"""The server's remote side over stdio: status, queue commands, and jobs run by its dispatcher."""

from __future__ import annotations

import asyncio
import base64
import socket
import sys
from pathlib import Path

import cattrs
from lsp_harness import SERVER, idle, initialize, write_workspace
from lsprotocol import types
from pytest_lsp import LanguageClient

from lsp_server.cli import main
from remote_exec.jobs import ExecSpec, JobKind, JobState
from remote_exec.queue import JobQueue


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pyproject(port: int) -> str:
    return f"""
[tool.gantry.execution]
queue = ".gantry/queue.db"

[[tool.gantry.inference.endpoints]]
name = "gpu-box"
base_url = "http://127.0.0.1:{port}"
model = "local-model"
"""


def exec_payload(text: str) -> dict:
    script = f"open('out.txt', 'w').write({text!r})\n"
    spec = ExecSpec(
        files={"job.py": base64.b64encode(script.encode()).decode()},
        argv=[sys.executable, "job.py"],
        artifacts=["out.txt"],
    )
    return cattrs.Converter().unstructure(spec)


async def command(client: LanguageClient, name: str, *args) -> dict:
    params = types.ExecuteCommandParams(command=name, arguments=list(args))
    return await asyncio.wait_for(client.workspace_execute_command_async(params), 30)


async def until(predicate, timeout: float = 30.0) -> None:
    async def poll():
        while not await predicate():
            await asyncio.sleep(0.1)

    await asyncio.wait_for(poll(), timeout)


async def test_remote_state_queue_commands_and_local_jobs(tmp_path: Path):
    ws = write_workspace(tmp_path / "ws", {"pyproject.toml": pyproject(closed_port())})
    assert main(["trust", str(ws)]) == 0  # the endpoint is a destination: only trusted settings
    (ws / ".gantry").mkdir()
    queue = await asyncio.to_thread(JobQueue, ws / ".gantry" / "queue.db")
    client = await SERVER.start()
    try:
        await initialize(client, ws)
        await idle(client)

        async def offline() -> bool:
            return (await command(client, "gantry.queueStatus"))["remotes"] == {"gpu-box": "down"}

        await until(offline)

        async def shown_offline() -> bool:  # gantry/status is coalesced: it follows shortly
            return bool(client.statuses) and client.statuses[-1].state == "offline"

        await until(shown_offline)
        assert "Remote:" in client.statuses[-1].message

        # A CPU job enqueued by anyone sharing the queue runs in the server's local sandbox.
        job, _ = await asyncio.to_thread(queue.enqueue, "exec:1", JobKind.EXEC, exec_payload("hi"))

        async def done() -> bool:
            current = await asyncio.to_thread(queue.get, job.id)
            return current.state == JobState.DONE

        await until(done)
        result = (await asyncio.to_thread(queue.get, job.id)).result
        assert result["where"] == "local" and result["state"] == "succeeded"
        assert base64.b64decode(result["artifacts"]["out.txt"]) == b"hi"

        # A dead job is listed and retried on command.
        dead, _ = await asyncio.to_thread(
            queue.enqueue, "exec:2", JobKind.EXEC, {"argv": "not a spec"}
        )

        async def is_dead() -> bool:
            return (await asyncio.to_thread(queue.get, dead.id)).state == JobState.DEAD

        await until(is_dead)
        listing = await command(client, "gantry.queueStatus")
        assert listing["remotes"] == {"gpu-box": "down"}
        states = {job["key"]: job["state"] for job in listing["jobs"]}
        assert states == {"exec:1": "done", "exec:2": "dead"}
        assert (await command(client, "gantry.retryQueued", {"id": dead.id}))["retried"] == 1
        await until(is_dead)  # still not a spec: it dies again, with its reason kept
        assert "not an exec spec" in (await asyncio.to_thread(queue.get, dead.id)).error
        assert (await command(client, "gantry.retryQueued"))["retried"] == 1
        await client.shutdown_session()
    finally:
        await asyncio.to_thread(queue.close)
        # Bounded: after a failure no exit was sent, and pytest-lsp would wait for the server.
        await asyncio.wait_for(client.stop(), 30)
