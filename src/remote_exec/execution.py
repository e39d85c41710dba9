"""Client of the execution gateway (see remote_exec.gateway.app for the API).

Errors are typed for the dispatcher's circuit breaker: only GatewayDown means "the remote is
down"; GatewayBusy is a healthy remote asking to wait; GatewayRejected will never succeed as sent;
JobLost means the gateway no longer knows the job (it restarted before the job finished):
resubmit the same key, which runs it once; GatewayDraining is a healthy remote that takes no
new job (send it elsewhere).
"""

from __future__ import annotations

import codecs
import time
from collections.abc import Iterator
from typing import Any, Self

import attrs
import httpx2

from remote_exec.jobs import ExecResult, ExecSpec
from remote_exec.urls import check_remote_url

TERMINAL = frozenset({"succeeded", "failed", "cancelled", "timed_out"})


class GatewayError(Exception):
    pass


class GatewayDown(GatewayError):
    """Refused, timed out, 5xx, or an answer that is not the API's JSON."""


class GatewayBusy(GatewayError):
    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"gateway busy; retry after {retry_after_s:g} s")
        self.retry_after_s = retry_after_s


class GatewayRejected(GatewayError):
    """400/401/403/413: retrying the same request cannot help."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"gateway rejected the request ({status}): {reason}")
        self.status, self.reason = status, reason


class JobLost(GatewayError):
    pass


class GatewayDraining(GatewayError):
    """The gateway takes no new jobs (it is being drained); it still answers for its own."""


@attrs.frozen
class RemoteJob:
    id: str
    key: str
    state: str
    exit_code: int | None
    stdout_tail: str
    stderr_tail: str
    artifacts: dict[str, str]
    created_at: float
    started_at: float | None
    finished_at: float | None

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    @classmethod
    def from_json(cls, data: Any) -> RemoteJob:
        try:
            return cls(**{f.name: data[f.name] for f in attrs.fields(cls)})
        except (KeyError, TypeError) as exc:
            raise GatewayDown(f"not a job record: {exc!r}") from exc


class ExecutionClient:
    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        connect_timeout_s: float = 3.0,
        read_timeout_s: float = 30.0,
    ) -> None:
        self.base_url = check_remote_url(base_url).rstrip("/")
        self._http = httpx2.Client(
            base_url=self.base_url,
            # Without a token the gateway's 401 says what is missing (GatewayRejected).
            headers={"Authorization": f"Bearer {token}"} if token else {},
            timeout=httpx2.Timeout(read_timeout_s, connect=connect_timeout_s),
        )

    def __repr__(self) -> str:  # never the token
        return f"ExecutionClient({self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def submit(self, key: str, spec: ExecSpec) -> RemoteJob:
        """Submit, or find the job already submitted under `key` (a 200: success too)."""
        body = {
            "key": key,
            "files": spec.files,
            "argv": spec.argv,
            "env": spec.env,
            "timeout_s": spec.timeout_s,
            # Labels are the client's routing, not the gateway's business.
            "resources": attrs.asdict(spec.resources, filter=lambda a, _: a.name != "labels"),
            "artifacts": spec.artifacts,
        }
        return RemoteJob.from_json(self._request("POST", "/v1/jobs", json=body))

    def get(self, job_id: str) -> RemoteJob:
        return RemoteJob.from_json(self._request("GET", f"/v1/jobs/{job_id}"))

    def cancel(self, job_id: str) -> RemoteJob:
        return RemoteJob.from_json(self._request("DELETE", f"/v1/jobs/{job_id}"))

    def health(self) -> dict[str, Any]:
        return self._request("GET", "/v1/health")

    def wait(self, job_id: str, *, deadline_s: float, poll_s: float = 0.5) -> RemoteJob:
        """Poll until the job ends or `deadline_s` seconds pass; the last state either way."""
        until = time.monotonic() + deadline_s
        while True:
            job = self.get(job_id)
            left = until - time.monotonic()
            if job.done or left <= 0:
                return job
            time.sleep(min(poll_s, left))

    def logs(self, job_id: str) -> Iterator[str]:
        """The job's output as it arrives, until it ends. A stream that goes quiet longer than
        the read timeout is reopened where it stopped, so a silent job is not an error."""
        offset = 0
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while True:
            try:
                with self._http.stream(
                    "GET", f"/v1/jobs/{job_id}/logs", params={"offset": offset}
                ) as response:
                    self._check(response, job_path=True)
                    for data in response.iter_bytes():
                        offset += len(data)
                        if text := decoder.decode(data):
                            yield text
                if tail := decoder.decode(b"", final=True):
                    yield tail
                return
            except httpx2.ReadTimeout:
                continue
            except httpx2.TransportError as exc:
                raise GatewayDown(f"{self.base_url}: {exc!r}") from exc

    def result(self, job: RemoteJob) -> ExecResult:
        """The finished job as the record every executor returns."""
        started, finished = job.started_at, job.finished_at
        return ExecResult(
            state=job.state,
            exit_code=job.exit_code,
            stdout_tail=job.stdout_tail,
            stderr_tail=job.stderr_tail,
            duration_s=(finished - started) if started and finished else 0.0,
            artifacts=dict(job.artifacts),
            where=self.base_url,
        )

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx2.TransportError as exc:
            raise GatewayDown(f"{self.base_url}: {exc!r}") from exc
        self._check(response, job_path=path.startswith("/v1/jobs/"))
        try:
            return response.json()
        except ValueError as exc:
            raise GatewayDown(f"{self.base_url}: answer is not JSON") from exc

    def _check(self, response: httpx2.Response, *, job_path: bool) -> None:
        status = response.status_code
        if status < 400:
            return
        if status == 429:
            raise GatewayBusy(_retry_after(response.headers.get("retry-after")))
        if status == 404 and job_path:
            raise JobLost(f"{self.base_url} does not know this job")
        if status == 503 and response.headers.get("x-gantry-draining"):
            raise GatewayDraining(f"{self.base_url} is draining: it takes no new jobs")
        if 400 <= status < 500:
            response.read()
            raise GatewayRejected(status, _reason(response))
        raise GatewayDown(f"{self.base_url}: HTTP {status}")


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else 1.0
    except ValueError:
        return 1.0  # an HTTP date: rare from our gateway; a short wait is safe


def _reason(response: httpx2.Response) -> str:
    try:
        return str(response.json().get("error", response.text))
    except (ValueError, AttributeError):
        return response.text[:200]
