"""What remote_exec is configured with: the inference endpoints, the gateways, the dispatcher.

A leaf: it imports nothing else of remote_exec but URL checks and secret reading, so the
dispatcher, routing and the inference chain all import it, and the language server's settings
reuse these very types (structured from TOML and editor JSON) instead of copies.
Secrets are named here (an environment variable or a file), never held.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import attrs

from remote_exec.credentials import read_secret
from remote_exec.urls import check_remote_url

Privacy = Literal["self-hosted", "cloud"]
PrivacyPolicy = Literal["self-hosted-only", "any"]
CassetteMode = Literal["record", "replay"]


def _remote_url(_instance: object, _attribute: attrs.Attribute, value: str) -> None:
    check_remote_url(value)


_positive = attrs.validators.gt(0)


def str_tuple(value: str | Iterable[str]) -> tuple[str, ...]:
    """A tuple of strings; one string is one item (a glob or a path), never its characters."""
    return (value,) if isinstance(value, str) else tuple(value)


@attrs.frozen
class Endpoint:
    """One Messages-API server. Its key comes from an environment variable or a file."""

    name: str
    base_url: str = attrs.field(validator=_remote_url)
    """Without /v1 (the SDK adds it), e.g. http://gpu-box:8000 or https://api.anthropic.com."""
    model: str
    api_key_env: str | None = None
    api_key_file: str | None = None
    privacy: Privacy = "self-hosted"
    connect_timeout_s: float = attrs.field(default=3.0, validator=_positive)
    read_timeout_s: float = attrs.field(default=60.0, validator=_positive)
    max_tokens: int = attrs.field(default=4096, validator=_positive)

    def __attrs_post_init__(self) -> None:
        # A mislabelled endpoint would send code to the cloud under a "self-hosted-only" policy.
        # Checked here, not in a field validator: it needs two fields.
        host = urllib.parse.urlsplit(self.base_url).hostname or ""
        if self.privacy == "self-hosted" and (
            host == "anthropic.com" or host.endswith(".anthropic.com")
        ):
            raise ValueError(
                f"endpoint {self.name!r}: {host} is Anthropic's cloud, not self-hosted"
            )


@attrs.frozen
class OutboundPolicy:
    """What may leave the machine for a model: checked by the inference client on every call."""

    privacy: PrivacyPolicy = "self-hosted-only"
    """Whether `cloud` endpoints may be sent code at all."""
    exclude: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)
    """gitignore-style globs of files whose content never leaves, on top of the built-in ones
    (environment files, keys, certificates, credential stores)."""


@attrs.frozen
class GatewayTarget:
    """The execution gateway (`gantry gateway` on the GPU box) and where its token is."""

    url: str = attrs.field(validator=_remote_url)
    name: str = "gateway"
    token_env: str | None = "GANTRY_GATEWAY_TOKEN"
    token_file: str | None = None
    connect_timeout_s: float = attrs.field(default=3.0, validator=_positive)
    read_timeout_s: float = attrs.field(default=30.0, validator=_positive)
    labels: dict[str, str] = attrs.field(factory=dict, hash=False)
    """What this gateway offers beyond its reported capacity (e.g. gpu = "h100"): a job that
    asks for labels goes only to a gateway that has every one of them, with the same value."""

    def read_token(self) -> str | None:
        """The token, read now; None when neither source holds one. Raises SecretMissing."""
        return read_secret(self.token_env, self.token_file, f"gateway {self.name}")


@attrs.frozen
class Cassette:
    """Model answers recorded to, or replayed from, a directory (`gantry check --cassette`):
    see remote_exec.inference.cassette. Replaying never touches the network."""

    path: str
    mode: CassetteMode


@attrs.frozen
class DispatcherConfig:
    queue_path: Path
    work_root: Path
    """Where local jobs get their private directories."""
    endpoints: tuple[Endpoint, ...] = ()
    privacy: PrivacyPolicy = "self-hosted-only"
    exclude: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)
    """Globs of files whose content never leaves (see OutboundPolicy)."""
    gateways: tuple[GatewayTarget, ...] = attrs.field(default=(), converter=tuple)
    """Where exec jobs may run, each with the capacity it reports; names are unique."""
    local_fallback: bool = True
    unsandboxed: bool = False
    max_concurrency: int = 2
    """Workers: how many jobs run here at once (model calls, local sandbox runs). A job on a
    gateway holds none: it takes a slot the gateway reported free, which bounds the drain."""
    lease_s: float = 30.0
    retry_down_s: float = 5.0
    """How soon a job that found its remote down looks again (no attempt is consumed)."""
    probe_interval_s: float = 5.0
    """How often remotes are probed, and gateways asked for their capacity, while they answer;
    one that does not is asked less and less often, up to max_probe_interval_s."""
    max_probe_interval_s: float = 30.0
    cassette: Cassette | None = None

    def __attrs_post_init__(self) -> None:
        names = [gateway.name for gateway in self.gateways]
        if duplicated := sorted({name for name in names if names.count(name) > 1}):
            raise ValueError(f"gateway names must be unique: {', '.join(duplicated)}")

    @property
    def outbound(self) -> OutboundPolicy:
        return OutboundPolicy(self.privacy, self.exclude)
