"""Every WeCom errcode in WECOM_API.md maps to an error class and a meaning."""

from __future__ import annotations

import re

import pytest

from channels.errcodes import ERRCODES, TOKEN_ERRCODES, error_for
from core.errors import (
    ChannelAuthError,
    ChannelError,
    ChannelRateLimited,
    ChannelRejected,
    ChannelTransient,
)
from core.settings import PROJECT_ROOT

API_NOTES = PROJECT_ROOT.parent / "shared" / "WECOM_API.md"
# Five-digit numbers, or -1 (ASCII or Unicode minus), not inside identifiers or after "doc"/"official".
ERRCODE = re.compile(r"(?<![\w#.])(?<!doc )(?<!official )([-−]1|\d{5})(?![\w.,])")


def errcodes_in_api_notes() -> set[int]:
    text = API_NOTES.read_text(encoding="utf-8")
    return {int(code.replace("−", "-")) for code in ERRCODE.findall(text)}


@pytest.mark.skipif(not API_NOTES.exists(), reason="shared/WECOM_API.md is not next to the project")
def test_every_errcode_in_the_api_notes_is_mapped():
    found = errcodes_in_api_notes()

    assert {-1, 40014, 42001, 45009, 45033, 93000, 93004, 93008} <= found  # the parser sees them
    assert not {91039, 92135, 90454} & found  # … and not the doc numbers
    assert found - set(ERRCODES) == set()


def test_every_mapping_has_a_channel_error_class_and_a_meaning():
    for errcode, (cls, meaning) in ERRCODES.items():
        assert issubclass(cls, ChannelError), errcode
        assert meaning.strip(), errcode


@pytest.mark.parametrize(
    ("errcode", "cls"),
    [
        (-1, ChannelTransient),
        (41063, ChannelTransient),
        (45009, ChannelRateLimited),
        (45033, ChannelRateLimited),
        (40001, ChannelAuthError),
        (40014, ChannelAuthError),
        (42001, ChannelAuthError),
        (40058, ChannelRejected),
        (93000, ChannelAuthError),
        (93004, ChannelRejected),
        (93008, ChannelRejected),
        (12345, ChannelRejected),
    ],
)
def test_error_for_builds_the_mapped_class_with_errcode(errcode, cls):
    error = error_for(errcode, "errmsg from WeCom", http_status=200)

    assert type(error) is cls
    assert error.errcode == errcode and error.http_status == 200
    assert str(errcode) in str(error) and "errmsg from WeCom" in str(error)


def test_token_refresh_codes_are_auth_errors():
    assert TOKEN_ERRCODES == {40001, 40014, 42001}
    assert all(ERRCODES[code][0] is ChannelAuthError for code in TOKEN_ERRCODES)
