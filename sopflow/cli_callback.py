"""`sopflow callback`: the WeCom callback receiver, and `--new-keys` for a fresh Token/AES key pair."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from core.settings import get_settings
from sopflow.cli_common import fail, say


def callback(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8932,
    host: Annotated[
        str, typer.Option(help="Address to bind; behind a reverse proxy keep 127.0.0.1.")
    ] = "127.0.0.1",
    new_keys: Annotated[
        bool, typer.Option("--new-keys", help="Print a fresh Token and EncodingAESKey and exit.")
    ] = False,
) -> None:
    """Receive WeCom's event callbacks on /wecom/callback until Ctrl-C (WECOM_CALLBACK_TOKEN,
    WECOM_CALLBACK_AES_KEY, WECOM_CORP_ID); each event is recorded, then applied."""
    from channels.wecom_crypto import new_credentials

    if new_keys:
        token, aes_key = new_credentials()
        say(f"WECOM_CALLBACK_TOKEN={token}")
        say(f"WECOM_CALLBACK_AES_KEY={aes_key}")
        return
    from callback.server import Receiver

    logging.basicConfig(level=logging.INFO, format="%(asctime)s  %(name)s  %(message)s")
    try:
        receiver = Receiver(get_settings(), host=host, port=port)
    except ValueError as error:
        fail(f"{error} (`sopflow callback --new-keys` makes a Token/AES key pair)")
    say(f"WeCom callback receiver on http://{host}:{port}/wecom/callback (Ctrl-C stops it)")
    receiver.serve()
