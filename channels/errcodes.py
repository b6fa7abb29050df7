"""Every WeCom errcode sopflow knows, mapped to the `ChannelError` class it raises and a plain meaning."""

from __future__ import annotations

from core.errors import (
    ChannelAuthError,
    ChannelError,
    ChannelRateLimited,
    ChannelRejected,
    ChannelTransient,
)

OK = 0

# errcode -> (class raised, plain-language meaning). Sources: WECOM_API.md sections 1-6.
ERRCODES: dict[int, tuple[type[ChannelError], str]] = {
    -1: (ChannelTransient, "system busy, try again later"),
    # Token and credentials (section 1).
    40001: (ChannelAuthError, "invalid corp secret or access token"),
    40013: (ChannelAuthError, "invalid CorpID"),
    40014: (ChannelAuthError, "invalid access_token (also seen for an expired one)"),
    41001: (ChannelAuthError, "missing access_token"),
    42001: (ChannelAuthError, "access_token expired"),
    # Mass messages and their results (sections 2, 3, 6).
    40058: (ChannelRejected, "invalid parameter: bad JSON, too long or too many items"),
    40096: (ChannelRejected, "invalid external_userid"),
    41035: (ChannelRejected, "missing external_userid"),
    41046: (ChannelRejected, "missing msgid"),
    41047: (ChannelRejected, "invalid msgid"),
    41048: (ChannelRejected, "no customers to send to"),
    41063: (ChannelTransient, "the mass message is still being dispatched, try again later"),
    41064: (ChannelRejected, "too many attachments (at most 9)"),
    41065: (ChannelRejected, "invalid attachment type"),
    41093: (ChannelRejected, "the mass message was already cancelled"),
    41094: (ChannelRejected, "reminder limit reached: at most 3 per message in 24 hours"),
    44004: (ChannelRejected, "empty text"),
    45002: (ChannelRejected, "content too large (text at most 4000 bytes)"),
    45009: (ChannelRateLimited, "API call frequency exceeded; the block lasts the window"),
    45033: (ChannelRateLimited, "too many concurrent calls to one API"),
    48002: (ChannelRejected, "the app has no permission for this API"),
    60020: (ChannelRejected, "the calling IP is not in the app's trusted IPs"),
    84061: (ChannelRejected, "no external-contact relationship with this customer"),
    # Corp tags (mark_tag, add_corp_tag).
    40068: (ChannelRejected, "invalid tag id or tag group id"),
    40071: (ChannelRejected, "a tag of that name already exists in the group"),
    90206: (ChannelRejected, "mini-program not linked to the company"),
    # Media uploads (media/upload, media/uploadimg) and the media ids attachments carry.
    40004: (ChannelRejected, "invalid media type"),
    40006: (ChannelRejected, "invalid file size"),
    40007: (ChannelRejected, "invalid media_id (unknown, or older than its 3 days)"),
    41005: (ChannelRejected, "missing media data (multipart field `media`)"),
    # Welcome messages (section 5).
    41050: (ChannelRejected, "welcome_code invalid or expired"),
    41051: (ChannelRejected, "another app already sent the welcome message"),
    41096: (ChannelRejected, "the welcome message is already being sent"),
    # Group robot webhook (section 4).
    93000: (ChannelAuthError, "invalid webhook url (bad robot key)"),
    93004: (ChannelRejected, "the group robot is disabled"),
    93008: (ChannelRejected, "the group robot is not in the group"),
}

# A fresh token may fix these: re-fetch it once and retry the call once.
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})


def meaning(errcode: int) -> str:
    """The plain-language meaning of `errcode`, or a generic phrase for codes we do not know."""
    if errcode == OK:
        return "ok"
    known = ERRCODES.get(errcode)
    return known[1] if known else "unknown WeCom error"


def error_class(errcode: int) -> type[ChannelError]:
    """The class raised for `errcode`; unknown nonzero codes are rejections (never retried)."""
    known = ERRCODES.get(errcode)
    return known[0] if known else ChannelRejected


def error_for(errcode: int, errmsg: str, http_status: int | None = None) -> ChannelError:
    """The `ChannelError` for a nonzero WeCom answer, carrying `errcode` and `http_status`."""
    text = f"WeCom errcode {errcode} ({meaning(errcode)})"
    if errmsg:
        text += f": {errmsg}"
    return error_class(errcode)(text, errcode=errcode, http_status=http_status)
