"""Signed, expiring file links (``file_link_ttl``): a proxy that hands out S3-presigned-style URLs.

fal's own CDN links are plain and last days (see the protocol doc); a proxy or gateway that
keeps outputs in its own bucket hands out presigned links instead, valid for a while. With
``file_link_ttl`` set, every result names its video by a link signed for that many (emulated)
seconds from the moment the result was read: ``.../output.mp4?X-Amz-Expires=T&X-Amz-Signature=H``
(``T`` the event-loop time it expires at, ``H`` an HMAC of the request id and ``T`` under a key
of this emulator's own). The file route then answers as S3 does, 403 with an XML error
document: ``AccessDenied`` / ``Request has expired`` past ``T``, ``SignatureDoesNotMatch``
for a link it did not sign, ``AccessDenied`` for a plain link. Reading the result again gives
a fresh link.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
from collections.abc import Mapping
from urllib.parse import urlencode

EXPIRES = "X-Amz-Expires"
SIGNATURE = "X-Amz-Signature"
_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<Error><Code>{code}</Code><Message>{message}</Message>{extra}</Error>"
)


class LinkSigner:
    """Signs and checks this emulator's file links (see the module docstring)."""

    __slots__ = ("_key",)

    def __init__(self) -> None:
        self._key = os.urandom(32)  # another emulator's links never pass here

    def __repr__(self) -> str:
        return "<LinkSigner>"

    def query(self, request_id: str, expires: float) -> str:
        """The query string of a link to ``request_id``'s video valid until ``expires``."""
        stamp = f"{math.floor(expires * 1000) / 1000:.3f}"  # never later than asked
        return urlencode({EXPIRES: stamp, SIGNATURE: self._sign(request_id, stamp)})

    def problem(self, request_id: str, query: Mapping[str, str], now: float) -> str | None:
        """The XML error document refusing ``query`` at ``now``, or None when it is valid."""
        stamp, signature = query.get(EXPIRES), query.get(SIGNATURE)
        if stamp is None or signature is None:
            found = _error("AccessDenied", "Access Denied")
        elif not hmac.compare_digest(signature, self._sign(request_id, stamp)):
            found = _error(
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you "
                "provided. Check your key and signing method.",
            )
        elif now >= float(stamp):  # a link for 0 s is expired at once
            found = _error("AccessDenied", "Request has expired", f"<Expires>{stamp}</Expires>")
        else:
            return None
        return found

    def _sign(self, request_id: str, stamp: str) -> str:
        message = f"{request_id}\n{stamp}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()


def _error(code: str, message: str, extra: str = "") -> str:
    return _XML.format(code=code, message=message, extra=extra)
