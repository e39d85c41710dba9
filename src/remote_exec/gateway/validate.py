"""Turn an untrusted submission body into an ExecSpec, or say exactly what is wrong with it."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from remote_exec.bundle import BundleError, normalise
from remote_exec.gateway.config import GatewayConfig
from remote_exec.jobs import ExecSpec, Resources

_KEY = re.compile(r"[A-Za-z0-9._:/@+=-]{1,200}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FIELDS = {"key", "files", "argv", "env", "timeout_s", "resources", "artifacts"}
_RESOURCE_FIELDS = {"gpus", "cpus", "memory_mb"}


class SpecError(ValueError):
    """The submission is invalid (HTTP 400); the message names the field."""


def parse_submission(body: Any, config: GatewayConfig) -> tuple[str, ExecSpec]:
    if not isinstance(body, dict):
        raise SpecError("body must be a JSON object")
    if unknown := set(body) - _FIELDS:
        raise SpecError(f"unknown fields: {sorted(unknown)}")
    key = body.get("key")
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise SpecError("key: 1-200 characters of [A-Za-z0-9._:/@+=-]")
    lim = config.limits
    spec = ExecSpec(
        files=_files(body.get("files", {}), lim.max_files),
        argv=_argv(body.get("argv"), lim.max_argv, lim.max_arg_chars),
        env=_env(body.get("env", {}), config),
        timeout_s=_number(
            "timeout_s", body.get("timeout_s", 60.0), lim.min_timeout_s, lim.max_timeout_s
        ),
        resources=_resources(body.get("resources", {}), config),
        artifacts=_artifacts(body.get("artifacts", []), lim.max_artifacts),
    )
    return key, spec


def _rel_path(path: Any, field: str) -> str:
    """A relative path that stays inside the job directory (bundle.py checks again on write)."""
    try:
        return normalise(path)
    except BundleError as exc:
        raise SpecError(f"{field}: {exc}") from exc


def _files(files: Any, max_files: int) -> dict[str, str]:
    if not isinstance(files, dict) or len(files) > max_files:
        raise SpecError(f"files: an object of at most {max_files} path -> base64 entries")
    for path, content in files.items():
        _rel_path(path, "files")
        try:
            if not isinstance(content, str):
                raise TypeError
            base64.b64decode(content, validate=True)
        except (TypeError, binascii.Error) as exc:
            raise SpecError(f"files: {path!r} is not valid base64") from exc
    return dict(files)


def _argv(argv: Any, max_argv: int, max_chars: int) -> list[str]:
    if not isinstance(argv, list) or not 1 <= len(argv) <= max_argv:
        raise SpecError(f"argv: a list of 1-{max_argv} strings")
    for arg in argv:
        if not isinstance(arg, str) or not arg or "\0" in arg or len(arg) > max_chars:
            raise SpecError(f"argv: each item a non-empty string without NUL, <= {max_chars} chars")
    return list(argv)


def _env(env: Any, config: GatewayConfig) -> dict[str, str]:
    lim = config.limits
    if not isinstance(env, dict) or len(env) > lim.max_env:
        raise SpecError(f"env: an object of at most {lim.max_env} entries")
    for name, value in env.items():
        if not _ENV_NAME.fullmatch(name) or name not in config.env_allow:
            raise SpecError(f"env: {name!r} is not on the allow-list {sorted(config.env_allow)}")
        if not isinstance(value, str) or "\0" in value or len(value) > lim.max_env_value_chars:
            raise SpecError(f"env: {name} must be a string without NUL")
    return dict(env)


def _number(field: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise SpecError(f"{field}: a number in [{low}, {high}]")
    return float(value)


def _int(field: str, value: Any, low: int, high: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SpecError(f"{field}: an integer of at least {low}")
    if high is not None and value > high:
        raise SpecError(f"{field}: at most {high} on this gateway ({value} asked)")
    return value


def _resources(res: Any, config: GatewayConfig) -> Resources:
    lim = config.limits
    if not isinstance(res, dict) or set(res) - _RESOURCE_FIELDS:
        raise SpecError(f"resources: an object with only {sorted(_RESOURCE_FIELDS)}")
    default = Resources()
    return Resources(
        gpus=_int("resources.gpus", res.get("gpus", default.gpus), 0, lim.max_gpus),
        cpus=_int("resources.cpus", res.get("cpus", default.cpus), 1, lim.max_cpus),
        memory_mb=_int(
            "resources.memory_mb",
            res.get("memory_mb", default.memory_mb),
            lim.min_memory_mb,
            lim.max_memory_mb,
        ),
    )


def _artifacts(artifacts: Any, max_artifacts: int) -> list[str]:
    if not isinstance(artifacts, list) or len(artifacts) > max_artifacts:
        raise SpecError(f"artifacts: a list of at most {max_artifacts} relative paths")
    return [_rel_path(a, "artifacts") for a in artifacts]
