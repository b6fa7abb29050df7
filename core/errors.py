"""Errors sopflow raises, one hierarchy for the whole project.

    SopError
    ├── SopDefinitionError (also ValueError)   a bad SOP file: path, line, field
    ├── TemplateError                           a step failed to render: sop, step, variable
    ├── CalendarError (also ValueError)         sop/calendar.yaml has errors (each named by line)
    ├── UnsettledTouches                        a run left touches sending, due but unsent, or unknown
    ├── EventError (also ValueError)            an event that cannot be recorded: unknown kind, customer …
    ├── CouponNotIssued                         the chain's coupon system issued no coupon (reason)
    └── ChannelError                            a delivery channel refused or failed a call
        ├── ChannelTransient                    worth retrying: busy, rate limit, 5xx, timeout
        │   ├── ChannelRateLimited              45009 / 45033: back off before retrying
        │   └── ChannelUnreached                the call provably never reached WeCom
        ├── ChannelAuthError                    token/secret problems (40001, 40014, 42001 …)
        └── ChannelRejected                     the request itself is wrong; never retried

Skips (opted out, capped, not a contact, holdout) are outcomes recorded on a
Delivery row, not exceptions. Messages never include secrets or phone numbers.
"""

from __future__ import annotations

from typing import Any


class SopError(Exception):
    """Base of every error sopflow raises on purpose."""

    def __init__(self, message: str, *, sop_id: str | None = None, step: str | None = None):
        super().__init__(message)
        self.message = message
        self.sop_id = sop_id
        self.step = step

    def __str__(self) -> str:
        where = "/".join(p for p in (self.sop_id, self.step) if p)
        return f"{where}: {self.message}" if where else self.message


class SchemaMismatch(SopError):
    """The database's schema is not the one this sopflow's migrations end at."""


class SopDefinitionError(SopError, ValueError):
    """An SOP file that cannot be used; `problems` holds each `path:line: error: …` line."""

    def __init__(
        self, message: str, *, problems: list[str] | None = None, sop_id: str | None = None
    ):
        super().__init__(message, sop_id=sop_id)
        self.problems = problems or [message]


class TemplateError(SopError):
    """A step's template failed to render for a recipient."""

    def __init__(
        self, message: str, *, sop_id: str | None, step: str | None, variable: str | None = None
    ):
        super().__init__(message, sop_id=sop_id, step=step)
        self.variable = variable


class CalendarError(SopError, ValueError):
    """The ops-edited holiday calendar (sop/calendar.yaml) has errors, each named by its line."""


class UnsettledTouches(SopError):
    """A run ended with touches of its occurrence not in a final state; the message counts them
    and `summaries` holds the run's outcome summaries."""

    def __init__(self, message: str, *, summaries: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.summaries = summaries or []


class EventError(SopError, ValueError):
    """An event that cannot be recorded: unknown kind, customer, product or order, or a bad payload."""


class CouponNotIssued(SopError):
    """The chain's coupon system issued no coupon; `reason` is recorded on the skipped touch."""

    @property
    def reason(self) -> str:
        return self.message


class ChannelError(SopError):
    """A delivery channel call failed; `errcode` is WeCom's code when there is one."""

    def __init__(self, message: str, *, errcode: int | None = None, http_status: int | None = None):
        super().__init__(message)
        self.errcode = errcode
        self.http_status = http_status


class ChannelTransient(ChannelError):
    """A failure that may pass: system busy, HTTP 5xx, a timeout."""


class ChannelRateLimited(ChannelTransient):
    """WeCom's call frequency (45009) or concurrency (45033) limit was hit."""


class ChannelUnreached(ChannelTransient):
    """The call provably never reached WeCom: no connection (refused, DNS) or no access token."""


class ChannelAuthError(ChannelError):
    """The access token or corp secret was refused."""


class ChannelRejected(ChannelError):
    """WeCom refused the request itself (bad parameter, no permission …); never retried."""


class TargetsError(SopError, ValueError):
    """A targets file (sop/targets.yaml) that cannot be read; the message names file and line."""
