"""Local WeCom emulator: a real HTTP server speaking WeCom's mass-message API, with injectable faults.

Endpoints (WeCom's JSON shapes; see channels/EMULATOR.md):
    GET  /cgi-bin/gettoken
    POST /cgi-bin/externalcontact/add_msg_template
    POST /cgi-bin/externalcontact/get_groupmsg_task
    POST /cgi-bin/externalcontact/get_groupmsg_send_result
    POST /cgi-bin/externalcontact/get_groupmsg_list_v2
    POST /cgi-bin/externalcontact/remind_groupmsg_send
    POST /cgi-bin/externalcontact/cancel_groupmsg_send
    POST /cgi-bin/externalcontact/add_moment_task       (moments, `moments.py`)
    GET  /cgi-bin/externalcontact/get_moment_task_result?jobid=
    POST /cgi-bin/externalcontact/get_moment_list
    POST /cgi-bin/externalcontact/get_moment_task
    POST /cgi-bin/webhook/send                        (group robots, `?key=`)
    POST /coupons/issue                               (the chain's coupon system, coupons.py)
    POST /cgi-bin/media/upload, /cgi-bin/media/uploadimg (multipart; `media.py`)
    POST /cgi-bin/externalcontact/group_welcome_template/add|edit|get|del (`group_welcome.py`)
Admin: POST /emulator/config (JSON merge), GET /emulator/state, POST /emulator/reset,
POST /emulator/names (display names). Pages: GET / and /emulator/outbox (sent messages, HTML).

Use it in tests as `with WeComEmulator(EmulatorConfig(...)) as emu: ... emu.url` (state in
memory), with `state=path` to keep its state in a SQLite file across restarts, or from the
command line with `serve_forever(port, state=path)`.

Modules: `config` (EmulatorConfig, limits), `wire` (request checks, paging), `state` (messages
and the WeCom endpoints), `persistence` (memory or SQLite), `core` (WeComEmulator: lifecycle,
admin, faults), `sent` and `html` (the sent-messages page), `server` (HTTP), `main`
(serve_forever).
"""

from __future__ import annotations

from channels.emulator.config import (
    EXTERNALCONTACT,
    GETTOKEN,
    WEBHOOK,
    ApiError,
    EmulatorConfig,
)
from channels.emulator.core import WeComEmulator
from channels.emulator.main import serve_forever
from channels.emulator.persistence import STATE_FILE

__all__ = [
    "EXTERNALCONTACT",
    "GETTOKEN",
    "STATE_FILE",
    "WEBHOOK",
    "ApiError",
    "EmulatorConfig",
    "WeComEmulator",
    "serve_forever",
]
