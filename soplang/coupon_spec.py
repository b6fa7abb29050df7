"""A step's `issue:` in the SOP file: the chain's coupon issued to the customer before the text is sent."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

# The chain's coupon (template) code as its coupon system knows it, e.g. WELCOME-10 for 首单券:
# letters, digits, `-` and `_`, never the coupon's Chinese name.
COUPON_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def _coupon_code(value: str) -> str:
    if not value:
        raise ValueError("must not be empty: write the chain's coupon code, e.g. WELCOME-10")
    if not COUPON_CODE.match(value):
        raise ValueError(
            f"coupon `{value}` is not a coupon code: write the code the chain's coupon system "
            "knows (letters, digits, - and _, up to 64), e.g. WELCOME-10"
        )
    return value


class CouponIssue(BaseModel):
    """`issue: {coupon: WELCOME-10}`: sopflow asks the chain to issue this coupon to the customer
    first; the text gets `coupon.code` and `coupon.expires`, and is not sent if issuing fails."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    coupon: Annotated[str, AfterValidator(_coupon_code)]
