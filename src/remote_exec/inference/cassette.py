"""Cassettes: model answers recorded once and replayed, so `gantry check --ai` gives the same
findings in CI with no model at all.

A cassette is a directory of JSON files:

- `cassette.json`: `{"format": 1, "endpoints": [{"name": ..., "model": ...}]}`, the chain it was
  recorded with, so a replay needs no endpoint configured;
- one `<key>.json` per answer: `{"format": 1, "model": ..., "response": ..., "requestId": ...,
  "answeredAt": ...}`, the endpoint's Messages response as it came, and when (epoch seconds:
  a replay's provenance says when the model answered, as the recording's did).

The key is the sha256 of the wire body (canonical JSON) as it leaves the exit point: already
checked and redacted, with the endpoint's model, without `metadata` (who asks, not what). The
cassette hooks in at `client.call`'s `post`, so a replay still passes the queue, the privacy
policy, redaction, the client's reading of the answer and placeholder restoration. Nothing in a
cassette is secret: bodies are only hashed, and answers are kept as the endpoint sent them,
before this machine's placeholders are put back.

Recording posts to the endpoint and writes each answer it gets (errors are not recorded; a later
answer to the same body replaces an earlier one). Replaying never touches the network: a body
the cassette does not hold is refused for good (NotRecorded), and the job says why.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from remote_exec.settings import Cassette, Endpoint

from .client import Post, Posted, post_messages
from .errors import Rejected

FORMAT = 1
MANIFEST = "cassette.json"
VOLATILE = frozenset({"metadata"})
"""Wire body keys left out of the key: they say who asks, not what is asked."""
REPLAY_URL = "http://cassette.invalid"
"""The base URL of endpoints made from a manifest: `.invalid` never resolves (RFC 2606), and a
replay never connects anyway."""


class CassetteError(ValueError):
    """Not a cassette, or one this version cannot read."""


class NotRecorded(Rejected):
    """A replayed request the cassette does not hold: no endpoint is asked instead."""


def request_key(sent: dict[str, Any]) -> str:
    kept = {key: value for key, value in sent.items() if key not in VOLATILE}
    canonical = json.dumps(kept, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@attrs.frozen
class Recorder:
    folder: Path
    post: Post = post_messages

    def __call__(self, endpoint: Endpoint, sent: dict[str, Any]) -> Posted:
        posted = attrs.evolve(self.post(endpoint, sent), at=time.time())
        try:
            response: Any = json.loads(posted.text)
        except ValueError:  # kept as it came: a replay gives the same bad answer
            response = posted.text
        entry = {
            "format": FORMAT,
            "model": sent.get("model"),
            "response": response,
            "requestId": posted.request_id,
            "answeredAt": posted.at,
        }
        _write_json(self.folder / f"{request_key(sent)}.json", entry)
        return posted


@attrs.frozen
class Replayer:
    folder: Path

    def __call__(self, endpoint: Endpoint, sent: dict[str, Any]) -> Posted:
        key = request_key(sent)
        file = self.folder / f"{key}.json"
        try:
            entry = json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NotRecorded(
                f"{endpoint.name}: the cassette {self.folder} has no answer for this request "
                f"(model {sent.get('model')!r}, key {key[:12]}); record it again with --record"
            ) from None
        except (OSError, ValueError) as exc:
            raise Rejected(f"the cassette entry {file} cannot be read ({exc})") from None
        response = entry.get("response") if isinstance(entry, dict) else None
        if response is None:
            raise Rejected(f"the cassette entry {file} holds no response")
        text = response if isinstance(response, str) else json.dumps(response)
        at = entry.get("answeredAt")
        return Posted(text, entry.get("requestId"), at if isinstance(at, (int, float)) else None)


def post_for(cassette: Cassette | None, endpoints: Sequence[Endpoint]) -> Post | None:
    """What `client.call` posts with under `cassette` (None: the network, as usual). Recording
    (re)writes the manifest with `endpoints`, the chain being recorded."""
    if cassette is None:
        return None
    folder = Path(cassette.path)
    if cassette.mode == "replay":
        return Replayer(folder)
    folder.mkdir(parents=True, exist_ok=True)
    chain = [{"name": endpoint.name, "model": endpoint.model} for endpoint in endpoints]
    _write_json(folder / MANIFEST, {"format": FORMAT, "endpoints": chain})
    return Recorder(folder)


def replay_endpoints(folder: Path) -> tuple[Endpoint, ...]:
    """The chain a cassette was recorded with, as endpoints a replay can name; CassetteError
    when `folder` is not a cassette this version reads."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CassetteError(f"{folder} is not a cassette (no {MANIFEST}); record one") from None
    except (OSError, ValueError) as exc:
        raise CassetteError(f"{folder / MANIFEST} cannot be read ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CassetteError(f"{folder / MANIFEST}: not a format {FORMAT} cassette")
    try:
        return tuple(
            Endpoint(name=str(item["name"]), base_url=REPLAY_URL, model=str(item["model"]))
            for item in manifest.get("endpoints", ())
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CassetteError(f"{folder / MANIFEST}: invalid endpoints ({exc})") from None


def _write_json(path: Path, data: Any) -> None:
    """Whole or not at all: workers record at once, and a replay must never read half a file."""
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
