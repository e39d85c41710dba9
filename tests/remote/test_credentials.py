"""The one way a secret named in settings is read: environment variable first, then the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from remote_exec.credentials import SecretMissing, read_secret
from remote_exec.settings import GatewayTarget

SECRET = "s3cret-0123456789abcdef"


def test_the_environment_wins_and_a_file_is_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "token"
    file.write_text("from-file-0123456789\n")
    monkeypatch.setenv("GANTRY_TEST_SECRET", f" {SECRET}\n")
    assert read_secret("GANTRY_TEST_SECRET", str(file), "x") == SECRET
    monkeypatch.delenv("GANTRY_TEST_SECRET")
    assert read_secret("GANTRY_TEST_SECRET", str(file), "x") == "from-file-0123456789"
    assert read_secret("GANTRY_TEST_SECRET", None, "x") is None
    assert read_secret(None, None, "x") is None


def test_an_unreadable_or_empty_file_is_an_error_that_names_it(tmp_path: Path) -> None:
    with pytest.raises(SecretMissing, match="gateway g: cannot read .*absent"):
        GatewayTarget(
            url="http://127.0.0.1:9", name="g", token_file=str(tmp_path / "absent")
        ).read_token()
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(SecretMissing, match="is empty"):
        read_secret(None, str(tmp_path / "empty"), "x")
