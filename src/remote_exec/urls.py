"""Remote URLs: plain http(s), never with credentials in them."""

from __future__ import annotations

import urllib.parse


def check_remote_url(url: str) -> str:
    """`url` when it is an http(s) URL with a host and no `user:password@`; else ValueError.

    The message never repeats the URL: it may hold a password."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise ValueError("not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError("expected an http:// or https:// URL with a host")
    if "@" in parts.netloc:
        # Sent as Basic auth on every request, to wherever the URL points.
        raise ValueError(
            "a URL with credentials (user:password@) is refused; "
            "name an environment variable or a file for the token instead"
        )
    return url
