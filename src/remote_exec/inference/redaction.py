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
import itertools
import math
import re
import string
from collections import Counter
from collections.abc import Iterator
from typing import Any

import attrs

PLACEHOLDER = "<<gantry:secret:{}>>"
_PLACEHOLDER = re.compile(r"<<gantry:secret:(\d+)>>")

# Keys of a Messages body whose strings are structure, not content: roles, block types, ids, tool
# names, the metadata's user id. Everything else that is a string is text and is redacted.
STRUCTURAL_KEYS = frozenset({"type", "role", "id", "tool_use_id", "name", "media_type", "user_id"})

# Public IP addresses are not credentials (code is full of them); the private-key plugin flags a
# header line only, and key blocks are taken whole by _KEY_BLOCK instead.
_SKIPPED_PLUGINS = frozenset({"IPPublicDetector", "PrivateKeyDetector"})

# A line goes to a plugin only if it could hold what that plugin looks for (its gates, below).
# Assignment and URL plugins start from a keyword or "://"; the ones that want a long value
# (Cloudant, IBM, SoftLayer, Azure: 24+ characters) need a long run too; the keyword plugin needs
# an assignment or comparison after its keyword and a quote; every other plugin (and the entropy
# checks) needs a run of 20+ token characters or one of the short prefixes of JWT, Slack and
# Artifactory tokens. A plugin not named here (a newer detect-secrets) runs on every line either
# of the first two gates lets through. All plugins on every line cost ~60 µs a line, and even one
# regex per line ~4 µs: the first two gates run over the whole text's bytes at C speed instead.
KEYWORD, TOKEN, ASSIGNMENT = "keyword", "token", "assignment"
_GATES: dict[str, frozenset[str]] = {
    "KeywordDetector": frozenset({KEYWORD, ASSIGNMENT}),
    "CloudantDetector": frozenset({KEYWORD, TOKEN}),
    "IbmCloudIamDetector": frozenset({KEYWORD, TOKEN}),
    "IbmCosHmacDetector": frozenset({KEYWORD, TOKEN}),
    "SoftlayerDetector": frozenset({KEYWORD, TOKEN}),
    "AzureStorageKeyDetector": frozenset({KEYWORD, TOKEN}),
    "NpmDetector": frozenset({KEYWORD}),
    "BasicAuthDetector": frozenset({KEYWORD}),
}
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
_ASSIGNED = re.compile(
    r"(?:key|pass|pwd|secret|contras)\S{0,100}\s*[:=!(\"'`]"
    r"|[!=]{2,3}\s*\w{0,100}(?:key|pass|pwd|secret|contras)"
)
"""In a lower-cased line: what each of the keyword plugin's patterns (all with quotes required)
needs, a keyword then an assignment, call or quote, or a comparison then a keyword. Bounded, so
a long minified line costs linear time, not quadratic."""
_QUOTES = re.compile(r"[\"'`]")
_PREFIXES = re.compile(rb"xox|eyJ|AKC|AP[0-9A-F]")
MIN_RUN = 20
_RUN_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-\\"
_AS_RUN = bytes.maketrans(
    bytes(range(256)),
    bytes(ord("a") if chr(i).encode() in _RUN_CHARS and i < 128 else ord(" ") for i in range(256)),
)

# A private key block: header, key material (base64 lines, PEM headers, and the quotes, escaped
# newlines and commas of a key written as a string literal), footer. Nothing else may sit between,
# so code that merely mentions both markers (a PEM parser) is left alone. The separator and the
# material share no character (a backslash is an escape or a line continuation, never alone), so
# a block without a footer fails in linear time instead of backtracking through every split.
_KEY_SEPARATOR = r"(?:\s|\\[nr]|\\(?=\s)|[\"',;])"
_KEY_BLOCK = re.compile(
    r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
    rf"(?:{_KEY_SEPARATOR}+(?:[A-Za-z0-9+/=]+|(?:Proc-Type|DEK-Info|Version|Comment):[^\n\"'\\]*))*"
    rf"{_KEY_SEPARATOR}*"
    r"-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
)

MAX_WINDOW = 500
WINDOW_OVERLAP = 200
"""Longer lines reach the plugins in windows this long, overlapping by more than any secret of
bounded shape; a longer token straddling two windows is still one token to the entropy check."""

# Our entropy check: any 20+ character token (base64, base64url, hex) that is random enough.
_TOKEN = re.compile(r"[A-Za-z0-9+/_-]{20,}={0,2}")
_HEX_CHARS = frozenset(string.hexdigits)
_DIGITS = frozenset(string.digits)
_UPPER = frozenset(string.ascii_uppercase)
_LOWER = frozenset(string.ascii_lowercase)
_SEPARATORS = re.compile(r"[/_.-]")
MIN_TOKEN_LEN = 20
# Values of a "password"/"pwd"/"secret" key that are settings, not secrets ('MODULE_PWD_STATE': 'yes')
_NOT_SECRETS = frozenset(
    {"yes", "no", "true", "false", "none", "null", "on", "off", "enabled", "disabled"}
)
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
    plugins = _plugins()
    offset = 0
    for index, line in enumerate(text.split("\n")):
        keyword, token = index in keyword_lines, index in token_lines
        if keyword or token:
            passed = {KEYWORD} if keyword else set()
            if token:
                passed.add(TOKEN)
            if keyword and _QUOTES.search(line) and _ASSIGNED.search(line.lower()):
                passed.add(ASSIGNMENT)
            chosen = [p for p, gates in plugins if gates <= passed or not gates and passed]
            if (
                token
                and (any_token := _any_token_regex()) is not None
                and not any_token.search(line)
            ):
                chosen = [p for p in chosen if id(p) not in _combined_ids()]
            found = _scan_line(line, chosen, token)
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


def _scan_line(line: str, plugins: list[Any], tokens: bool) -> Iterator[tuple[int, int, str]]:
    # Some plugins' patterns are quadratic in the line's length (an 80 kB minified line took
    # seconds): long lines go to them in overlapping windows; our token check is linear.
    step = MAX_WINDOW - WINDOW_OVERLAP
    for at in range(0, max(1, len(line) - WINDOW_OVERLAP), step):
        window = line[at : at + MAX_WINDOW]
        for plugin in plugins:
            for start, end in _plugin_spans(plugin, window):
                if _kept(plugin, window[start:end], window):
                    yield at + start, at + end, plugin.secret_type
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
            if (
                best is not None
                and len(match.group(best)) >= 4
                and match.start(best) > match.start()
            ):
                yield match.span(best)
            elif match.end() > match.start():
                yield match.span()


def _kept(plugin: Any, value: str, line: str) -> bool:
    """detect-secrets' default filters, as its own scanner applies them, the entropy limit of the
    entropy plugins (applied by the scanner, not by analyze_string), and values that are words."""
    heuristic = _heuristic()
    # Below MIN_TOKEN_LEN the base64 limit cannot be reached (4.5 bits needs 23 distinct
    # characters) and a hex string is too short for a key; skipping them early saves the
    # plugin's slow entropy loop on every short quoted string.
    if hasattr(plugin, "entropy_limit") and (
        len(value) < MIN_TOKEN_LEN
        or plugin.calculate_shannon_entropy(value) <= plugin.entropy_limit
        or _is_alphabet(value)
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
    chars = set(token)
    if chars <= _HEX_CHARS:
        return len(token) >= MIN_HEX_LEN and not chars <= _DIGITS and _entropy(token) > HEX_BITS
    if chars.isdisjoint(_DIGITS) or chars.isdisjoint(_UPPER) or chars.isdisjoint(_LOWER):
        return False
    return not _is_wordy(token) and _entropy(token) > BASE64_BITS


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
    descents = sum(a >= b for a, b in itertools.pairwise(value))
    return len(set(value)) == len(value) and descents <= 3


@functools.cache
def _plugins() -> tuple[tuple[Any, frozenset[str]], ...]:
    """detect-secrets' plugins, instantiated once, each with the gates a line must pass for it
    (an empty set: any gate)."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    return tuple(
        (
            cls(),
            _GATES.get(
                cls.__name__, frozenset({TOKEN}) if cls.__name__ in _TOKEN_PLUGINS else frozenset()
            ),
        )
        for cls in get_mapping_from_secret_type_to_class().values()
        if cls.__name__ not in _SKIPPED_PLUGINS
    )


def _token_regex_plugins() -> list[Any]:
    return [p for p, gates in _plugins() if gates == {TOKEN} and getattr(p, "denylist", None)]


@functools.cache
def _any_token_regex() -> re.Pattern[str] | None:
    """One alternation of every token plugin's patterns: most lines the token gate lets through
    (long names) match none, and one search costs far less than a call into each plugin."""
    patterns = [rx for p in _token_regex_plugins() for rx in p.denylist]
    try:
        return re.compile(
            "|".join(
                f"(?{'i' if rx.flags & re.IGNORECASE else ''}:{rx.pattern})" for rx in patterns
            )
        )
    except re.error:  # a pattern that cannot be combined (a newer plugin): call each plugin
        return None


@functools.cache
def _combined_ids() -> frozenset[int]:
    return frozenset(id(p) for p in _token_regex_plugins())


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
            parts += [
                text[last : span.start],
                self._placeholder_for(text[span.start : span.end], span.kind),
            ]
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
