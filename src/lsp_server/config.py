"""Typed settings, in layers: defaults < the user's config file < [tool.gantry] in pyproject.toml
or gantry.toml < editor settings (initializationOptions, then workspace/configuration).

The workspace's layer is untrusted: keys that choose what runs, where data goes, which
credentials are read or which files are written are withheld from it unless the user trusted
the workspace (see `lsp_server.trust`). Invalid values never stop the server: each one falls
back to its default and is reported as a plain sentence the server shows to the user.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
import typing
from pathlib import Path
from typing import Any, Literal

import attrs

from lsp_server.trust import USER_ONLY, WORKSPACE_PATH, TrustState, TrustStore, withhold
from lsp_server.typed_settings import attrs_class, normalise_keys, structure
from remote_exec.settings import Cassette, Endpoint, GatewayTarget, PrivacyPolicy

Level = Literal["error", "warning", "info", "hint"]
CLIENT_ONLY = frozenset({"server", "trace"})
"""Keys of the editor's `gantry` section that belong to the editor extension, not to us."""
LEVELS: tuple[str, ...] = typing.get_args(Level)
ADDITIVE = {"merge": "union"}
"""Metadata of a list field whose layers add up instead of the later replacing the earlier."""


@attrs.frozen
class RuffSettings:
    enabled: bool = True
    path: str | None = attrs.field(default=None, metadata=USER_ONLY)
    """The ruff binary; by default the one installed with Gantry, else `ruff` on PATH."""
    select: list[str] = attrs.Factory(list)
    """Replaces the project's rule selection when not empty."""
    extend_select: list[str] = attrs.Factory(list)
    ignore: list[str] = attrs.Factory(list)


@attrs.frozen
class IndexSettings:
    enabled: bool = True
    exclude: list[str] = attrs.Factory(list)
    """gitignore-style patterns skipped on top of .gitignore."""


@attrs.frozen
class InferenceSettings:
    endpoints: list[Endpoint] = attrs.field(factory=list, metadata=USER_ONLY)
    """Tried in order."""
    privacy: PrivacyPolicy = attrs.field(default="self-hosted-only", metadata=USER_ONLY)
    """Whether code may be sent to `cloud` endpoints at all."""
    # Bounded: a cloned repository may set these, and tokens are the user's money.
    context_budget: int = attrs.field(
        default=2000, validator=[attrs.validators.ge(0), attrs.validators.le(32_000)]
    )
    """Tokens of context (definitions, callers, tests) sent with each unit under review."""
    min_confidence: float = attrs.field(
        default=0.5, validator=[attrs.validators.ge(0.0), attrs.validators.le(1.0)]
    )
    """AI findings the model is less sure of are not shown."""
    max_per_unit: int = attrs.field(
        default=5, validator=[attrs.validators.ge(0), attrs.validators.le(50)]
    )
    """At most this many AI findings per function, method, class or block, most confident first."""
    exclude: list[str] = attrs.field(factory=list, metadata=ADDITIVE)
    """gitignore-style globs of files whose content never leaves the machine, on top of the
    built-in ones (.env*, keys, certificates, credential stores). Every layer adds its globs
    (a workspace may set them: it can only keep more at home); `!` negations are ignored."""
    cassette: Cassette | None = attrs.field(default=None, metadata=USER_ONLY)
    """Record model answers to, or replay them from, a directory (what `gantry check --ai
    --cassette DIR --record|--replay` sets): a replay never touches the network."""


@attrs.frozen
class TestgenSettings:
    """Test generation. Bounded: a cloned repository may set these, and each second holds the
    user's CPU, each token is the user's money."""

    budget_seconds: float = attrs.field(
        default=120.0, validator=[attrs.validators.gt(0), attrs.validators.le(900)]
    )
    """Wall clock of one "Generate tests" run, engines and funnel together."""
    reruns: int = attrs.field(
        default=5, validator=[attrs.validators.ge(1), attrs.validators.le(20)]
    )
    """A candidate is kept only if it passes this many reruns in random order."""
    gpu_paths: list[str] = attrs.Factory(list)
    """Modules (gitignore-style globs, relative to the project root) whose tests need a GPU,
    besides those importing torch, cupy or jax: their jobs run only on a gateway."""
    model_rounds: int = attrs.field(
        default=3, validator=[attrs.validators.ge(0), attrs.validators.le(6)]
    )
    """Rounds of asking the model, each fed what the last one's tests did (0: never ask)."""
    model_tokens: int = attrs.field(
        default=60_000, validator=[attrs.validators.ge(0), attrs.validators.le(200_000)]
    )
    """Tokens (sent plus answered) all rounds of one run may spend together."""
    context_budget: int = attrs.field(
        default=4000, validator=[attrs.validators.ge(0), attrs.validators.le(32_000)]
    )
    """Tokens of context (callees, fixtures, existing tests, callers) sent with the code."""
    answer_tokens: int = attrs.field(
        default=4096, validator=[attrs.validators.ge(256), attrs.validators.le(16_384)]
    )
    """The most one answer may spend."""


@attrs.frozen
class ExecutionSettings:
    gateways: list[GatewayTarget] = attrs.field(factory=list, metadata=USER_ONLY)
    """Where exec jobs may run (`[[execution.gateways]]`), each by name; a job goes to one
    that is up, has room for it and every label it asks for."""
    gateway: GatewayTarget | None = attrs.field(default=None, metadata=USER_ONLY)
    """One gateway (`[execution.gateway]`): the same as a list of one, before `gateways`."""
    local_fallback: bool = True
    """Run CPU jobs in the local sandbox while the gateway is down or busy."""
    unsandboxed: bool = attrs.field(default=False, metadata=USER_ONLY)
    """Run local jobs without bubblewrap. Announced every time it is used."""
    queue: str | None = attrs.field(default=None, metadata=WORKSPACE_PATH)
    """The durable job queue file; by default one per workspace in the user data directory."""
    max_concurrency: int = attrs.field(default=2, validator=attrs.validators.gt(0))

    def gateway_targets(self) -> tuple[GatewayTarget, ...]:
        """Every configured gateway: the single `gateway` first, then `gateways`."""
        return ((self.gateway,) if self.gateway is not None else ()) + tuple(self.gateways)


@attrs.frozen
class Settings:
    store: str | None = attrs.field(default=None, metadata=WORKSPACE_PATH)
    """The context store file; by default one per workspace in the user cache directory."""
    max_file_size_kb: int = attrs.field(default=1024, validator=attrs.validators.gt(0))
    ruff: RuffSettings = RuffSettings()
    index: IndexSettings = IndexSettings()
    severity: dict[str, Level] = attrs.Factory(dict)
    """Rule code or prefix -> level; the longest matching prefix wins."""
    log_level: Literal["debug", "info", "warning", "error"] = "warning"
    inference: InferenceSettings = InferenceSettings()
    execution: ExecutionSettings = ExecutionSettings()
    testgen: TestgenSettings = TestgenSettings()

    @property
    def max_file_size(self) -> int:
        return self.max_file_size_kb * 1024


def _deep_merge(
    base: dict[str, Any], override: dict[str, Any], cls: type | None = Settings
) -> dict[str, Any]:
    merged = dict(base)
    fields = {f.name: f for f in attrs.fields(cls)} if cls is not None else {}
    hints = typing.get_type_hints(cls) if cls is not None else {}
    for key, value in override.items():
        field = fields.get(key)
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value, attrs_class(hints.get(key)))
        elif (
            field is not None
            and field.metadata.get("merge") == "union"
            and isinstance(value, list)
            and isinstance(merged.get(key), list)
        ):
            merged[key] = merged[key] + [v for v in value if v not in merged[key]]
        else:
            merged[key] = value
    return merged


@attrs.frozen
class LoadedSettings:
    settings: Settings
    problems: list[str]
    """Invalid values, each a sentence; their defaults were used."""
    withheld: list[str] = attrs.Factory(list)
    """Dotted keys of the workspace's settings ignored because the workspace is not trusted."""
    source: Path | None = None
    """The workspace's settings file, when it has one."""
    trust: TrustState = "untrusted"

    def withheld_message(self) -> str | None:
        """One sentence naming what was ignored and how to trust it; None if nothing was."""
        if not self.withheld:
            return None
        changed = " changed since you trusted it, and" if self.trust == "changed" else ""
        folder = self.source.parent if self.source else "."
        return (
            f"{self.source}{changed} sets {', '.join(self.withheld)}, which only a trusted "
            f"workspace may set (they choose what runs, where code and credentials go, or "
            f"which files are written); ignored. If you trust this repository, run "
            f"`gantry trust {folder}`, or set them in {user_config_path()}."
        )


def user_config_path() -> Path:
    """The user's own settings file: the same keys as [tool.gantry], all of them trusted."""
    from platformdirs import user_config_dir

    return Path(user_config_dir("gantry")) / "config.toml"


def _read_toml(file: Path, table: tuple[str, ...], problems: list[str]) -> dict[str, Any]:
    try:
        data: Any = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        problems.append(f"{file}: cannot be read ({exc}); its settings are ignored")
        return {}
    for part in table:
        data = data.get(part, {}) if isinstance(data, dict) else {}
    return data if isinstance(data, dict) else {}


def read_project_settings(
    root: Path | None, problems: list[str]
) -> tuple[Path | None, dict[str, Any]]:
    """The workspace's settings file and its raw table: gantry.toml, else [tool.gantry] of
    pyproject.toml, at the workspace root."""
    if root is None:
        return None, {}
    for name, table in (("gantry.toml", ()), ("pyproject.toml", ("tool", "gantry"))):
        file = root / name
        if file.is_file() and (data := _read_toml(file, table, problems)):
            return file, data
    return None, {}


def load_settings(
    root: Path | None,
    *editor_layers: Any,
    trust_workspace: bool = False,
    trust_store: TrustStore | None = None,
) -> LoadedSettings:
    """Settings for a workspace, and what was wrong or withheld on the way.

    Editor layers are the user's (each editor keeps workspace-level values of the restricted
    keys out of them); `trust_workspace` trusts the workspace's file without `gantry trust`."""
    problems: list[str] = []
    user_file = user_config_path()
    user = _read_toml(user_file, (), problems) if user_file.is_file() else {}
    merged = normalise_keys(user, Settings)
    source, project = read_project_settings(root, problems)
    trust: TrustState = "untrusted"
    withheld: list[str] = []
    if source is not None and root is not None:
        trust = (
            "trusted"
            if trust_workspace
            else (trust_store or TrustStore.default()).state(source, project)
        )
        project = normalise_keys(project, Settings)
        if trust != "trusted":
            project, withheld = withhold(project, Settings, root)
        merged = _deep_merge(merged, project)
    for layer in editor_layers:
        if isinstance(layer, dict):
            layer = {k: v for k, v in layer.items() if k not in CLIENT_ONLY}
            merged = _deep_merge(merged, normalise_keys(layer, Settings))
        elif layer is not None:
            problems.append(f"editor settings: expected an object, got {layer!r}; ignored")
    settings = _unique_gateways(structure(Settings, merged, "", problems), problems)
    return LoadedSettings(settings, problems, withheld, source, trust)


def _unique_gateways(settings: Settings, problems: list[str]) -> Settings:
    """Gateways are told apart by name (status, breakers, routing): a second one of a name is
    dropped, with a sentence, rather than losing every execution setting."""
    execution = settings.execution
    seen = {execution.gateway.name} if execution.gateway is not None else set()
    kept = []
    for index, target in enumerate(execution.gateways):
        if target.name in seen:
            problems.append(
                f"execution.gateways[{index}]: another gateway is named {target.name!r}; "
                f"ignored (give each a distinct name)"
            )
            continue
        seen.add(target.name)
        kept.append(target)
    if len(kept) == len(execution.gateways):
        return settings
    return attrs.evolve(settings, execution=attrs.evolve(execution, gateways=kept))


def _workspace_file(root: Path | None, configured: str | None, base: str, folder: str) -> Path:
    """A configured path (relative to the workspace), else one file per workspace under `base`."""
    if configured:
        path = Path(configured).expanduser()
        return path if path.is_absolute() or root is None else root / path
    key = str(root.resolve()) if root else "no-workspace"
    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(key).name or "root")[:40]
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return Path(base) / folder / f"{slug}-{digest}.db"


def store_path(root: Path | None, settings: Settings) -> Path:
    """Where the workspace's context store lives: a cache, rebuilt if lost (verdicts aside)."""
    from platformdirs import user_cache_dir

    return _workspace_file(root, settings.store, user_cache_dir("gantry"), "stores")


def queue_path(root: Path | None, settings: Settings) -> Path:
    """Where the workspace's durable job queue lives: data, not cache — jobs must survive."""
    from platformdirs import user_data_dir

    return _workspace_file(root, settings.execution.queue, user_data_dir("gantry"), "queues")


def severity_for(rule: str, settings: Settings, default: Level) -> Level:
    best = ""
    for prefix in settings.severity:
        if rule.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return settings.severity[best] if best else default
