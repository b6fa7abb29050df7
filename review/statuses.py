"""How the review groups delivery statuses: accepted by WeCom, treated (past the holdout), resulted."""

from __future__ import annotations

from models.delivery import DeliveryStatus

S = DeliveryStatus
# WeCom accepted the mass message: the row is `sent` or has a result since.
ACCEPTED = (S.SENT, S.DELIVERED, S.NOT_A_FRIEND, S.OVER_WECOM_LIMIT, S.UNCONFIRMED)
# Rows past the holdout guard that were not held out: the treated arm (intention to treat).
TREATED = (*ACCEPTED, S.FAILED, S.UNKNOWN)
# WeCom reported what became of the message.
RESULTED = (S.DELIVERED, S.NOT_A_FRIEND, S.OVER_WECOM_LIMIT)
