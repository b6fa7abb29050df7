"""Run the receiver: uvicorn serving `create_app`, with the worker applying what it records."""

from __future__ import annotations

import threading
import time

import uvicorn

from callback.app import create_app
from callback.apply import Directory
from callback.worker import CallbackWorker
from channels.wecom import WeComClient
from channels.wecom_crypto import CallbackCrypto
from channels.wecom_reads import get_external_contact, get_group_chat
from core.settings import Settings
from models.directory_sync import upsert_corp_tags


def crypto_from(settings: Settings) -> CallbackCrypto:
    """The callback credentials of the settings; a clear error names what is missing."""
    return CallbackCrypto(
        settings.wecom_callback_token.get_secret_value(),
        settings.wecom_callback_aes_key.get_secret_value(),
        settings.wecom_corp_id,
    )


def directory_from(settings: Settings) -> Directory:
    """Reads of the corp's WeCom (or the emulator at WECOM_API_BASE)."""
    client = WeComClient.from_settings(settings)
    return Directory(
        contact=lambda external_userid: get_external_contact(client, external_userid),
        group=lambda chat_id: get_group_chat(client, chat_id),
        sync_tags=lambda session: upsert_corp_tags(client.get_corp_tag_list(), session=session),
    )


class Receiver:
    """The receiver on host:port in a thread (tests, `make up`) or in the foreground (`serve`)."""

    def __init__(
        self, settings: Settings, *, host: str = "127.0.0.1", port: int = 8932, poll: float = 5.0
    ) -> None:
        self.worker = CallbackWorker(lambda: directory_from(settings), poll_seconds=poll)
        app = create_app(crypto_from(settings), on_recorded=self.worker.wake)
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        sockets = [s for server in self.server.servers for s in server.sockets]
        host, port = sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self) -> Receiver:
        self.worker.start()
        self._thread = threading.Thread(target=self.server.run, name="callback-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the callback receiver did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.worker.stop()

    def serve(self) -> None:
        """In the foreground until Ctrl-C / SIGTERM (uvicorn handles both)."""
        self.worker.start()
        try:
            self.server.run()
        finally:
            self.worker.stop()
