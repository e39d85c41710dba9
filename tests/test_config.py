"""Settings: layered, typed, and forgiving of bad values."""

from __future__ import annotations

from pathlib import Path

from lsp_server import config
from lsp_server.config import Settings, severity_for, store_path


def load_settings(*args, **kwargs) -> tuple[Settings, list[str]]:
    loaded = config.load_settings(*args, **kwargs)
    return loaded.settings, loaded.problems


def test_layers_override_in_order(tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.gantry]\nmax_file_size_kb = 10\n[tool.gantry.ruff]\nextend_select = ["B"]\n'
    )
    settings, problems = load_settings(
        tmp_path, {"ruff": {"ignore": ["E501"]}}, {"maxFileSizeKb": 20}
    )
    assert problems == []
    assert settings.max_file_size_kb == 20
    assert settings.ruff.extend_select == ["B"] and settings.ruff.ignore == ["E501"]


def test_gantry_toml_wins_over_pyproject(tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text("[tool.gantry]\nmax_file_size_kb = 10\n")
    (tmp_path / "gantry.toml").write_text("max_file_size_kb = 30\n")
    assert load_settings(tmp_path)[0].max_file_size_kb == 30


def test_invalid_values_fall_back_to_defaults_with_a_reason(tmp_path: Path):
    settings, problems = load_settings(
        tmp_path,
        {"maxFileSizeKb": -1, "ruff": {"select": "E"}, "severity": {"E": "loud"}, "colour": 1},
    )
    assert settings.max_file_size_kb == Settings().max_file_size_kb
    assert settings.ruff.select == []
    assert settings.severity == {}
    joined = "\n".join(problems)
    for needle in ("max_file_size_kb", "ruff.select", "severity", "colour: unknown setting"):
        assert needle in joined


def test_unreadable_project_file_is_reported_not_fatal(tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text("[tool.gantry\nbroken")
    settings, problems = load_settings(tmp_path)
    assert settings == Settings()
    assert "cannot be read" in problems[0]


def test_editor_settings_of_the_wrong_shape(tmp_path: Path):
    settings, problems = load_settings(tmp_path, ["not", "a", "table"], {"ruff": 3})
    assert settings == Settings()
    assert len(problems) == 2


def test_severity_longest_prefix_wins():
    settings = Settings(severity={"F": "error", "F401": "hint"})
    assert severity_for("F401", settings, "warning") == "hint"
    assert severity_for("F841", settings, "warning") == "error"
    assert severity_for("E501", settings, "info") == "info"


def test_store_path_default_and_override(tmp_path: Path):
    default = store_path(tmp_path, Settings())
    assert default.suffix == ".db" and tmp_path.name in default.name
    assert store_path(tmp_path / "other", Settings()) != default
    assert store_path(tmp_path, Settings(store=".gantry/s.db")) == tmp_path / ".gantry/s.db"


def test_remote_settings_and_secrets(tmp_path: Path):
    settings, problems = load_settings(
        tmp_path,
        {
            "inference": {
                "endpoints": [
                    {"name": "gpu", "baseUrl": "http://127.0.0.1:8000", "model": "m"},
                    {"name": "incomplete"},
                    {"name": "cloud", "base_url": "https://x", "model": "y", "api_key": "sk-1"},
                ]
            },
            "execution": {"gateway": {"url": "http://127.0.0.1:9000", "token": "t"}},
        },
    )
    assert [e.name for e in settings.inference.endpoints] == ["gpu", "cloud"]
    assert settings.execution.gateway.url == "http://127.0.0.1:9000"
    joined = "\n".join(problems)
    assert "endpoints[1]: missing base_url, model" in joined
    assert "api_key: secrets are never settings" in joined and "token_env" in joined
    assert "sk-1" not in joined and "'t'" not in joined


def test_the_settings_are_remote_execs_own_types(tmp_path: Path):
    """One type per concept: what the dispatcher gets is what the user typed, checks included."""
    from remote_exec.settings import Endpoint, GatewayTarget

    settings, problems = load_settings(
        tmp_path,
        {
            "inference": {
                "endpoints": [
                    {"name": "gpu", "base_url": "http://127.0.0.1:8000", "model": "m"},
                    {"name": "mislabelled", "base_url": "https://api.anthropic.com", "model": "m"},
                ]
            },
            "execution": {"gateway": {"url": "http://127.0.0.1:9000", "token_file": "~/t"}},
        },
    )
    assert settings.inference.endpoints == [
        Endpoint(name="gpu", base_url="http://127.0.0.1:8000", model="m")
    ]
    assert settings.execution.gateway == GatewayTarget(
        url="http://127.0.0.1:9000", token_file="~/t"
    )
    assert problems == [
        (
            "inference.endpoints[1]: endpoint 'mislabelled': api.anthropic.com is Anthropic's "
            "cloud, not self-hosted; ignored"
        )
    ]


def test_queue_path_is_data_not_cache(tmp_path: Path):
    from lsp_server.config import queue_path

    assert "queues" in str(queue_path(tmp_path, Settings()))
    assert (
        queue_path(tmp_path, load_settings(tmp_path, {"execution": {"queue": "q.db"}})[0])
        == tmp_path / "q.db"
    )


def test_client_only_keys_are_not_ours(tmp_path: Path):
    settings, problems = load_settings(
        tmp_path, {"server": {"command": ["gantry", "serve"]}, "trace": {"server": "off"}}
    )
    assert settings == Settings() and problems == []


def test_a_repository_cannot_inflate_what_ai_review_spends(tmp_path: Path):
    """A cloned repository may tune AI review (its settings are not restricted), but within
    bounds: tokens are the user's money."""
    (tmp_path / "pyproject.toml").write_text(
        "[tool.gantry.inference]\ncontext_budget = 100000000\nmax_per_unit = 1000\n"
        "min_confidence = 0.8\n"
    )
    settings, problems = load_settings(tmp_path)
    assert settings.inference.context_budget == 2000
    assert settings.inference.max_per_unit == 5
    assert settings.inference.min_confidence == 0.8
    assert [p.split(":")[0] for p in problems] == [
        "inference.context_budget",
        "inference.max_per_unit",
    ]


def test_a_repository_cannot_inflate_what_test_generation_spends(tmp_path: Path):
    """Test generation's model settings may be tuned by a repository, within caps."""
    (tmp_path / "pyproject.toml").write_text(
        "[tool.gantry.testgen]\nmodel_rounds = 99\nmodel_tokens = 10000000\n"
        "context_budget = 999999\nanswer_tokens = 100000\n"
    )
    settings, problems = load_settings(tmp_path)
    assert settings.testgen == type(settings.testgen)()
    assert sorted(p.split(":")[0] for p in problems) == [
        "testgen.answer_tokens",
        "testgen.context_budget",
        "testgen.model_rounds",
        "testgen.model_tokens",
    ]
    (tmp_path / "pyproject.toml").write_text("[tool.gantry.testgen]\nmodel_rounds = 1\n")
    assert load_settings(tmp_path)[0].testgen.model_rounds == 1
