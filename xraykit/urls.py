"""Web addresses: which ones xraykit fetches (http and https) and how messages show them.

Every message that shows an address (a download line, an error, ``datasets info``) shows
:func:`redact_url`'s form: user name, password and every query value replaced by ``***``, so
that a signed or authenticated URL (``https://user:secret@host/f?token=...``) never reaches a
log or a notebook's output. :func:`redact_text` does the same to every address inside a text.
"""

from __future__ import annotations

import re
import urllib.parse

ALLOWED_SCHEMES = ("http", "https")
HIDDEN = "***"
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def redact_url(url: str) -> str:
    """The address as messages show it: credentials and query values replaced by ``***``.

    Args:
        url: An address.

    Returns:
        ``scheme://host[:port]/path?key=***`` (the fragment dropped); ``"<unreadable URL>"``
        when the address cannot be parsed.
    """
    try:
        parts = urllib.parse.urlsplit(str(url))
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unreadable URL>"
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    netloc = (f"{HIDDEN}@" if parts.username or parts.password else "") + host + port
    if not parts.netloc:
        netloc = ""
    pieces = (piece.partition("=") for piece in parts.query.split("&")) if parts.query else ()
    query = "&".join(f"{key}={HIDDEN}" if sep else HIDDEN for key, sep, _ in pieces)
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def redact_text(text: str) -> str:
    """A text with every address in it redacted by :func:`redact_url`.

    Args:
        text: A message.

    Returns:
        The message, its addresses redacted.
    """
    return _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), str(text))


def check_url(url, where: str) -> str:
    """Checks that an address is one xraykit may fetch: ``http://`` or ``https://`` with a host.

    Args:
        url: The address.
        where: What gave it, for the message (``"datasets.yaml: pneumoniamnist files 28 url"``,
            ``"url="``, ``"$XRAYKIT_MIRROR_URL"``).

    Returns:
        The address, unchanged.

    Raises:
        ValueError: If it is not a string, not http(s) (``file:``, ``ftp:``, a bare path) or has
            no host; the message names ``where`` and shows the address redacted.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"{where}: a URL is required (http:// or https://), not {url!r}.")
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError:
        host, parts = None, None
    if parts is None or parts.scheme.lower() not in ALLOWED_SCHEMES or not host:
        raise ValueError(f"{where}: {redact_url(url)} is not an http:// or https:// URL with a "
                         "host; only web addresses are fetched (give a local file as a path "
                         "instead).")
    return url
