"""The `/wecom/callback` HTTP endpoint: URL verification, and events recorded before the answer."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse

from callback.parse import MAX_BODY, CallbackEvent, NotAnEvent, envelope_encrypt
from channels.wecom_crypto import CallbackCrypto, CallbackCryptoError
from core.clock import utcnow
from models.callbacks import record_callback
from models.db import session_scope

log = logging.getLogger(__name__)

PATH = "/wecom/callback"
SIGNED = ("msg_signature", "timestamp", "nonce")


def record(event: CallbackEvent) -> bool:
    """Persist a decrypted event once per delivery; True when it was new."""
    with session_scope() as session:
        return record_callback(
            delivery_key=event.delivery_key,
            event=event.event,
            change_type=event.change_type,
            xml=event.xml,
            now=utcnow(),
            session=session,
        )


def _refuse(status: int, why: str) -> PlainTextResponse:
    log.warning("refused a callback (%d): %s", status, why)
    return PlainTextResponse(why, status_code=status)


def create_app(
    crypto: CallbackCrypto, *, on_recorded: Callable[[], None] = lambda: None
) -> FastAPI:
    """The receiver: WeCom calls GET once to verify the URL, then POSTs every event."""
    app = FastAPI(title="sopflow WeCom callback", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get(PATH)
    async def verify_url(request: Request) -> PlainTextResponse:
        query = request.query_params
        if any(not query.get(name) for name in (*SIGNED, "echostr")):
            return _refuse(400, "msg_signature, timestamp, nonce and echostr are required")
        try:
            echo = crypto.open(*(query[name] for name in SIGNED), query["echostr"])
        except CallbackCryptoError as error:
            return _refuse(403, str(error))
        return PlainTextResponse(echo)

    @app.post(PATH)
    async def receive(request: Request) -> PlainTextResponse:
        query = request.query_params
        if any(not query.get(name) for name in SIGNED):
            return _refuse(400, "msg_signature, timestamp and nonce are required")
        if int(request.headers.get("content-length") or 0) > MAX_BODY:
            return _refuse(413, f"body over {MAX_BODY} bytes")
        try:
            encrypt = envelope_encrypt(await request.body())
            event = CallbackEvent.parse(crypto.open(*(query[name] for name in SIGNED), encrypt))
        except NotAnEvent as error:
            return _refuse(400, str(error))
        except CallbackCryptoError as error:
            return _refuse(403, str(error))
        new = await run_in_threadpool(record, event)  # a failure here is a 500: WeCom retries
        if new:
            on_recorded()
        return PlainTextResponse("success")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
