"""Answering a 401/407 challenge (RFC 3261 §22.2, §22.3) for REGISTER and INVITE."""

from __future__ import annotations

import logging

from voxline.telephony.sip.digest import authorization, parse_challenge
from voxline.telephony.sip.message import SipRequest, SipResponse

log = logging.getLogger(__name__)


def credentials_header(
    request: SipRequest, response: SipResponse, username: str, password: str
) -> tuple[str, str] | None:
    """The (Proxy-)Authorization header answering `response`'s challenge, or None if unanswerable."""
    if response.status == 401:
        challenge_name, answer_name = "WWW-Authenticate", "Authorization"
    elif response.status == 407:
        challenge_name, answer_name = "Proxy-Authenticate", "Proxy-Authorization"
    else:
        return None
    for value in response.headers.get_all(challenge_name):
        if not value.strip().lower().startswith("digest"):
            continue
        try:
            challenge = parse_challenge(value)
            header = authorization(
                challenge, method=request.method, uri=request.uri, username=username, password=password
            )
        except ValueError as exc:
            log.warning("cannot answer %s challenge: %s", challenge_name, exc)
            continue
        return answer_name, header
    return None
