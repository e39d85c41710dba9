"""Content redaction: secrets in what leaves for a model become placeholders, restored in answers.

Three detectors, all on plain text: detect-secrets' plugins (the maintained ones: AWS, GitHub,
Slack, Stripe, JWT, keyword assignments, ...) run line by line; private key blocks are taken whole
across lines; and a check of our own catches long high-entropy base64/hex tokens that no plugin
names. Each secret becomes ``<<gantry:secret:N>>``, the same N for the same secret throughout one
request; the mapping lives in one ``Redaction``, kept for one call and never stored.

detect-secrets is imported on first use (it brings requests along): the language server's start-up
stays cheap.
"""

from __future__ import annotations

import bisect
import functools
import math
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import attrs

PLACEHOLDER = "<<gantry:secret:{}>>"
_PLACEHOLDER = re.compile(r"<<gantry:secret:(\d+)>>")

# Keys of a Messages body whose strings are structure, not content: roles, block types, ids, tool
# names. Everything else that is a string is text and is redacted.
STRUCTURAL_KEYS = frozenset({"type", "role", "id", "tool_use_id", "name", "media_type"})

# Public IP addresses are not credentials (code is full of them); the private-key plugin flags a
# header line only, and key blocks are taken whole by _KEY_BLOCK instead.
_SKIPPED_PLUGINS = frozenset({"IPPublicDetector", "PrivateKeyDetector"})

# A line goes to a plugin only if it could hold what that plugin looks for. Assignment and URL
# plugins start from a keyword or "://"; every other plugin (and the entropy checks) needs a run of
# 20+ token characters or one of the short prefixes of JWT, Slack and Artifactory tokens. A plugin
# not named here (a newer detect-secrets) runs on every line either gate lets through. All plugins
# on every line cost ~60 µs a line, and even one regex per line ~4 µs: the gates run over the
# whole text's bytes at C speed instead, which keeps a 2,000-line file at a few ms.
_KEYWORD_PLUGINS = frozenset(
    {
        "KeywordDetector",
        "CloudantDetector",
        "IbmCloudIamDetector",
        "IbmCosHmacDetector",
        "SoftlayerDetector",
        "AzureStorageKeyDetector",
        "NpmDetector",
        "BasicAuthDetector",
    }
)
_TOKEN_PLUGINS = frozenset(
    {
        "AWSKeyDetector",
        "ArtifactoryDetector",
        "Base64HighEntropyString",
        "DiscordBotTokenDetector",
        "GitHubTokenDetector",
        "GitLabTokenDetector",
        "HexHighEntropyString",
        "JwtTokenDetector",
        "MailchimpDetector",
        "OpenAIDetector",
        "PypiTokenDetector",
        "SendGridDetector",
        "SlackDetector",
        "SquareOAuthDetector",
        "StripeDetector",
        "TelegramBotTokenDetector",
        "TwilioKeyDetector",
    }
)
_KEYWORDS = re.compile(rb"key|pass|pw|secret|token|auth|contras|://")
"""Searched in the lower-cased bytes: the keywords of the assignment plugins, and URLs."""
_PREFIXES = re.compile(rb"xox|eyJ|AKC|AP[0-9A-F]")
MIN_RUN = 20
_RUN_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-\\"
_AS_RUN = bytes.maketrans(
    bytes(range(256)), bytes(ord("a") if chr(i).encode() in _RUN_CHARS and i < 128 else ord(" ") for i in range(256))
)

# A private key block: header, key material (base64 lines, PEM headers, and the quotes, escaped
# newlines and commas of a key written as a string literal), footer. Nothing else may sit between,
# so code that merely mentions both markers (a PEM parser) is left alone.
_KEY_BLOCK = re.compile(
    r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
    r"(?:(?:\s|\\[nr]|[\"',;\\])+(?:[A-Za-z0-9+/=]+|(?:Proc-Type|DEK-Info|Version|Comment):[^\n\"'\\]*))*"
    r"(?:\s|\\[nr]|[\"',;\\])*"
    r"-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
)

# Our entropy check: any 20+ character token (base64, base64url, hex) that is random enough.
_TOKEN = re.compile(r"[A-Za-z0-9+/_-]{20,}={0,2}")
_HEX = re.compile(r"[0-9a-fA-F]+")
_SEPARATORS = re.compile(r"[/_.-]")
MIN_TOKEN_LEN = 20
# Values of a "password"/"pwd"/"secret" key that are settings, not secrets ('MODULE_PWD_STATE': 'yes')
_NOT_SECRETS = frozenset({"yes", "no", "true", "false", "none", "null", "on", "off", "enabled", "disabled"})
BASE64_BITS = 4.2
"""Shannon entropy (bits per character) above which a 20+ character mixed token is a secret."""
HEX_BITS = 3.0
MIN_HEX_LEN = 32


@attrs.frozen
class Found:
    """One secret: where it is in the text and which detector named it."""

    start: int
    end: int
    kind: str


def find_secrets(text: str) -> list[Found]:
    """The secrets in ``text``, as non-overlapping spans in order."""
    spans: list[Found] = []
    if "PRIVATE KEY" in text:
        spans += [Found(m.start(), m.end(), "Private Key") for m in _KEY_BLOCK.finditer(text)]
    keyword_lines, token_lines = _gated_lines(text)
    if not keyword_lines and not token_lines:
        return _merged(spans)
    keyword_plugins, token_plugins, other_plugins = _plugins()
    offset = 0
    for index, line in enumerate(text.split("\n")):
        keyword, token = index in keyword_lines, index in token_lines
        if keyword or token:
            plugins = (keyword_plugins if keyword else ()) + (token_plugins if token else ())
            found = _scan_line(line, plugins + other_plugins, token)
            spans += (Found(offset + s, offset + e, kind) for s, e, kind in found)
        offset += len(line) + 1
    return _merged(spans)


def _gated_lines(text: str) -> tuple[set[int], set[int]]:
    """The indexes of the lines the keyword gate lets through, and of those the token gate does.

    On UTF-8 bytes, where a newline is one byte and never part of another character."""
    data = text.encode("utf-8", "surrogatepass")
    starts = [0]
    at = data.find(b"\n")
    while at >= 0:
        starts.append(at + 1)
        at = data.find(b"\n", at + 1)

    def line_of(position: int) -> int:
        return bisect.bisect_right(starts, position) - 1

    keyword = {line_of(m.start()) for m in _KEYWORDS.finditer(data.lower())}
    token = {line_of(m.start()) for m in _PREFIXES.finditer(data)}
    runs, run, at = data.translate(_AS_RUN), b"a" * MIN_RUN, 0
    while (at := runs.find(run, at)) >= 0:
        token.add(line_of(at))
        at = runs.find(b" ", at)
        if at < 0:
            break
    return keyword, token


def _scan_line(line: str, plugins: tuple[Any, ...], tokens: bool) -> Iterator[tuple[int, int, str]]:
    for plugin in plugins:
        for start, end in _plugin_spans(plugin, line):
            if _kept(plugin, line[start:end], line):
                yield start, end, plugin.secret_type
    if tokens:
        for match in _TOKEN.finditer(line):
            if is_high_entropy(match.group()):
                yield match.start(), match.end(), "High Entropy Token"


def _plugin_spans(plugin: Any, line: str) -> Iterator[tuple[int, int]]:
    """Where a plugin's secrets are in the line. A regex plugin's own analyze_string yields the
    first group, which is sometimes the secret (aws...key = "<40 chars>") and sometimes only the
    token's label (the "ghp" of ghp_…): a group counts when it is the secret in its context (4+
    characters, not at the start of the match), else the whole match is the secret."""
    denylist = getattr(plugin, "denylist", None)
    if denylist is None:
        for value in plugin.analyze_string(line):
            if value:
                yield from ((s, s + len(value)) for s in _all(line, value))
        return
    for regex in denylist:
        for match in regex.finditer(line):
            groups = [g for g in range(1, regex.groups + 1) if match.group(g)]
            best = max(groups, key=lambda g: len(match.group(g)), default=None)
            if best is not None and len(match.group(best)) >= 4 and match.start(best) > match.start():
                yield match.span(best)
            elif match.end() > match.start():
                yield match.span()


def _kept(plugin: Any, value: str, line: str) -> bool:
    """detect-secrets' default filters, as its own scanner applies them, the entropy limit of the
    entropy plugins (applied by the scanner, not by analyze_string), and values that are words."""
    heuristic = _heuristic()
    if hasattr(plugin, "entropy_limit") and (
        plugin.calculate_shannon_entropy(value) <= plugin.entropy_limit or _is_alphabet(value)
    ):
        return False
    return not (
        value.lower() in _NOT_SECRETS
        or heuristic.is_sequential_string(value)
        or heuristic.is_potential_uuid(value)
        or heuristic.is_likely_id_string(value, line, plugin)
        or heuristic.is_templated_secret(value)
        or heuristic.is_prefixed_with_dollar_sign(value)
        or heuristic.is_indirect_reference(line)
        or heuristic.is_not_alphanumeric_string(value)
    )


def is_high_entropy(token: str) -> bool:
    """Whether a 20+ character token looks random: long hex with more than HEX_BITS, or a mix of
    digits, upper and lower case with more than BASE64_BITS (identifiers and paths rarely are)."""
    if len(token) < MIN_TOKEN_LEN:
        return False
    if _HEX.fullmatch(token):
        return len(token) >= MIN_HEX_LEN and _entropy(token) > HEX_BITS and not token.isdigit()
    has = (any(c.isdigit() for c in token), any(c.isupper() for c in token), any(c.islower() for c in token))
    return all(has) and not _is_wordy(token) and _entropy(token) > BASE64_BITS


def _is_wordy(token: str) -> bool:
    """A path or a name (org/pipermail/p2p-hackers, SDKs/MacOSX10): two of its separated parts
    are words. In a random token, parts between the rare separators are long and mixed."""
    words = [p for p in _SEPARATORS.split(token) if len(p) >= 2 and p.isalpha() and p[1:].islower()]
    return len(words) >= 2


def _entropy(text: str) -> float:
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


def _is_alphabet(value: str) -> bool:
    """A character set written out ("ABC…Z234567", "a…z0…9_"): no repeats, a few ascending runs."""
    descents = sum(a >= b for a, b in zip(value, value[1:]))
    return len(set(value)) == len(value) and descents <= 3


@functools.cache
def _plugins() -> tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]]:
    """detect-secrets' plugins, instantiated once: (keyword-gated, token-gated, always)."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    keyword, token, other = [], [], []
    for cls in get_mapping_from_secret_type_to_class().values():
        name = cls.__name__
        if name in _SKIPPED_PLUGINS:
            continue
        if name in _KEYWORD_PLUGINS:
            keyword.append(cls())
        elif name in _TOKEN_PLUGINS:
            token.append(cls())
        else:
            other.append(cls())
    return tuple(keyword), tuple(token), tuple(other)


@functools.cache
def _heuristic() -> Any:
    from detect_secrets.filters import heuristic

    return heuristic


def _merged(spans: list[Found]) -> list[Found]:
    out: list[Found] = []
    for span in sorted(spans, key=lambda f: (f.start, -f.end)):
        if out and span.start < out[-1].end:
            last = out[-1]
            if span.end > last.end:
                out[-1] = Found(last.start, span.end, last.kind)
        else:
            out.append(span)
    return out


class Redaction:
    """One call's redaction: what was replaced, by what. Never stored, never sent."""

    def __init__(self) -> None:
        self._placeholder: dict[str, str] = {}
        self._original: dict[str, str] = {}
        self._taken: set[str] = set()
        self.kinds: Counter[str] = Counter()
        """How many secrets of each kind were replaced (for status and tests; no values)."""

    def __len__(self) -> int:
        return len(self._original)

    def redact_body(self, body: dict[str, Any]) -> dict[str, Any]:
        """A copy of a Messages body with every text field redacted. A secret found in one field
        is replaced wherever it occurs in any field, by the same placeholder."""
        texts = list(_strings(body))
        self._taken = {m.group() for t in texts for m in _PLACEHOLDER.finditer(t)}
        found = {t: find_secrets(t) for t in texts}
        secrets = {t[f.start : f.end] for t, spans in found.items() for f in spans}
        return _map_strings(body, lambda t: self._redact(t, found[t], secrets))

    def redact_text(self, text: str) -> str:
        self._taken |= {m.group() for m in _PLACEHOLDER.finditer(text)}
        spans = find_secrets(text)
        return self._redact(text, spans, {text[f.start : f.end] for f in spans})

    def restore(self, value: Any) -> Any:
        """``value`` (text, or lists and dicts of it, e.g. a tool_use input) with this call's
        placeholders replaced by the originals. Placeholders of other calls stay as they are."""
        if not self._original:
            return value

        def back(text: str) -> str:
            return _PLACEHOLDER.sub(lambda m: self._original.get(m.group(), m.group()), text)

        return _map_strings(value, back, structural=False)

    def _redact(self, text: str, spans: list[Found], secrets: set[str]) -> str:
        spans = _merged(spans + [Found(s, s + len(v), "") for v in secrets for s in _all(text, v)])
        if not spans:
            return text
        parts, last = [], 0
        for span in spans:
            parts += [text[last : span.start], self._placeholder_for(text[span.start : span.end], span.kind)]
            last = span.end
        parts.append(text[last:])
        return "".join(parts)

    def _placeholder_for(self, secret: str, kind: str) -> str:
        if (known := self._placeholder.get(secret)) is not None:
            return known
        n = len(self._original) + 1
        while PLACEHOLDER.format(n) in self._taken:  # the text already holds that one: skip it
            n += 1
        placeholder = PLACEHOLDER.format(n)
        self._taken.add(placeholder)
        self._placeholder[secret] = placeholder
        self._original[placeholder] = secret
        self.kinds[kind or "Repeated"] += 1
        return placeholder


def _all(text: str, value: str) -> Iterator[int]:
    start = text.find(value)
    while start >= 0:
        yield start
        start = text.find(value, start + len(value))


def _strings(value: Any, key: str | None = None) -> Iterator[str]:
    if isinstance(value, str):
        if key not in STRUCTURAL_KEYS:
            yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v, key)


def _map_strings(value: Any, fn: Any, key: str | None = None, structural: bool = True) -> Any:
    if isinstance(value, str):
        return value if structural and key in STRUCTURAL_KEYS else fn(value)
    if isinstance(value, dict):
        return {k: _map_strings(v, fn, k, structural) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_strings(v, fn, key, structural) for v in value]
    return value
