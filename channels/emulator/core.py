"""`WeComEmulator`: the emulator's lifecycle, admin API, faults, rate limits and token checks."""

from __future__ import annotations

import copy
import logging
import random
import sqlite3
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from channels.emulator.config import (
    EXTERNALCONTACT,
    GETTOKEN,
    RATE_WINDOW,
    WEBHOOK,
    ApiError,
    EmulatorConfig,
    JsonDict,
)
from channels.emulator.coupons import CouponEmulator
from channels.emulator.directory import ADMIN as DIRECTORY_ADMIN
from channels.emulator.directory import DIRECTORY_ROUTES, DirectoryApi
from channels.emulator.group_welcome import GROUP_WELCOME_ROUTES
from channels.emulator.html import error_page, render
from channels.emulator.media import MEDIA_ROUTES, MediaBook, read_body
from channels.emulator.moments import MOMENT_ROUTES
from channels.emulator.persistence import MemoryStore, SqliteStore
from channels.emulator.sent import QueryError, SentQuery, sent_page
from channels.emulator.server import EmulatorServer
from channels.emulator.state import MassMessages, Route
from channels.emulator.tags import TAG_ROUTES
from channels.emulator.welcome import ADMIN as CALLBACK_ADMIN
from channels.emulator.welcome import WELCOME_ROUTES
from channels.emulator.welcome import admin as callback_admin
from channels.emulator.wire import error_answer, over, parse_json
from channels.errcodes import meaning

logger = logging.getLogger(__name__)


class WeComEmulator(MassMessages, DirectoryApi):
    """The emulator's state and HTTP server (127.0.0.1, port 0 picks a free one).

    `state=None` (the default) keeps everything in memory; a path keeps mass messages, tokens,
    robot posts and the run-time config in that SQLite file across restarts.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
        state: str | Path | None = None,
    ) -> None:
        self._initial = copy.deepcopy(config or EmulatorConfig())
        self.config = copy.deepcopy(self._initial)
        self.clock = clock
        self.store: MemoryStore = SqliteStore(state) if state is not None else MemoryStore()
        self._host, self._port = host, port
        self._lock = threading.RLock()
        self._server: EmulatorServer | None = None
        self._thread: threading.Thread | None = None
        self.coupons = CouponEmulator(clock=clock)  # the chain's coupon system, /coupons/
        self._counters()
        snapshot = self.store.load(self.clock())
        self.remember(snapshot)
        if snapshot.config is not None:
            self.config = self._initial.restored(snapshot.config)
        if snapshot.messages:
            logger.info("restored %d mass messages from %s", len(snapshot.messages), state)

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> WeComEmulator:
        """Bind and serve in a daemon thread."""
        if self._server is None:
            self._server = EmulatorServer((self._host, self._port), self)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="wecom-emulator",
                daemon=True,
            )
            self._thread.start()
            logger.info("WeCom emulator listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving, close open connections, release the port and the state file."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.close_connections()
            server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
        with self._lock:
            self.store.close()

    def __enter__(self) -> WeComEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL of the running server, e.g. `http://127.0.0.1:8931`."""
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        port = self._server.server_address[1]
        return f"http://{self._host}:{port}"

    @property
    def state_path(self) -> Path | None:
        """The SQLite file the state is kept in, or None in memory."""
        return self.store.path

    # -- admin (also over HTTP) -------------------------------------------

    def configure(self, **changes: Any) -> EmulatorConfig:
        """Merge `changes` into the config (same as POST /emulator/config)."""
        with self._lock:
            config = self.config.merged(changes)
            self.store.save_config(config.persisted())
            self.config = config
            return self.config

    def reset(self) -> None:
        """Forget messages, tokens, names and counts (in the state file too); restore the starting config."""
        with self._lock:
            self.store.clear()
            self.config = copy.deepcopy(self._initial)
            self._counters()
            self.forget()
            self._media_book = MediaBook()
            self._group_welcome_templates: dict[str, JsonDict] = {}
            self.coupons.reset()

    def state(self) -> JsonDict:
        """Recorded messages, call counts and the config (secret masked)."""
        with self._lock:
            return {
                "config": self.config.public(),
                "calls": dict(self.calls),
                "tokens_issued": self.tokens_issued,
                "messages": [m.public() for m in self._messages.values()],
                "robot_posts": {key: list(posts) for key, posts in self.robot_posts.items()},
                "state_file": str(self.store.path) if self.store.path else None,
            }

    def set_names(self, names: JsonDict) -> int:
        """Remember display names of userids, chat ids, external_userids or robot keys for the
        sent-messages page (same as POST /emulator/names); answers how many names are known."""
        bad = [key for key, value in names.items() if not key or not isinstance(value, str)]
        if bad:
            example = '{"wrA": "北京生鲜爱好者群", "zhangwei.bj01": "张伟"}'
            raise ApiError(40058, f"names must map ids to text, e.g. {example}; not so: {bad[:3]}")
        with self._lock:
            self.store.save_names(names)
            self.names.update(names)
            return len(self.names)

    def sent_html(self, query: dict[str, str]) -> tuple[int, str]:
        """The sent-messages page (GET / or /emulator/outbox), or a 400 page naming the bad parameter."""
        try:
            wanted = SentQuery.parse(query)
        except QueryError as err:
            return 400, error_page(str(err))
        with self._lock:
            page = sent_page(self, wanted)
        return 200, render(page)

    @property
    def messages(self) -> list[JsonDict]:
        """The mass messages created so far, oldest first."""
        return self.state()["messages"]

    def _counters(self) -> None:
        """Per-process counts, never persisted: calls, rate windows, requests in flight."""
        self.calls: Counter[str] = Counter()
        self._accepted: defaultdict[str, deque[float]] = defaultdict(deque)
        self._in_flight: Counter[str] = Counter()

    # -- request handling --------------------------------------------------

    def handle(
        self, method: str, path: str, query: dict[str, str], body: bytes
    ) -> tuple[int, JsonDict | str] | None:
        """Answer one request: (HTTP status, JSON body or an HTML page), or None to drop the connection."""
        if method == "GET" and path in PAGES:
            return self.sent_html(query)
        if path.startswith("/emulator/"):
            return self._admin(method, path, body)
        route = ROUTES.get((method, path))
        if route is None:
            return 404, {"errcode": 404, "errmsg": f"no such endpoint: {method} {path}"}
        with self._lock:
            self.calls[path] += 1
            self._in_flight[path] += 1
            crowded = over(self.config.max_concurrent, self._in_flight[path])
            delay = self.config.delay_seconds + random.uniform(0, self.config.delay_jitter_seconds)
            if self.config.delay_paths and not path.endswith(tuple(self.config.delay_paths)):
                delay = 0.0
        try:
            if crowded:
                return error_answer(45033)
            if delay > 0:
                time.sleep(delay)
            return self._answer(path, route, query, body)
        finally:
            with self._lock:
                self._in_flight[path] -= 1

    def _answer(
        self, path: str, route: Route, query: dict[str, str], body: bytes
    ) -> tuple[int, JsonDict] | None:
        """The answer of a routed call, under the lock: faults, rate limit, token, then the route."""
        try:
            with self._lock:
                if (fault := self._take_fault(path)) is not None:
                    return fault
                if path not in UNAUTHENTICATED:
                    self.check_rate(path, self.config.rate_limit_per_minute)
                    self._check_token(query.get("access_token"))
                answer = {"errcode": 0, "errmsg": "ok", **route(self, query, read_body(path, body))}
                if path not in UNAUTHENTICATED and self.config.lose_answer_next > 0:
                    self.config.lose_answer_next -= 1
                    self.store.save_config(self.config.persisted())
                    return None  # done, but the caller never hears of it
                return 200, answer
        except ApiError as err:
            return error_answer(err.errcode, err.errmsg)
        except sqlite3.Error:
            logger.exception("the emulator could not write its state file %s", self.store.path)
            return 500, {"errcode": -1, "errmsg": "emulator state file error"}

    def _take_fault(self, path: str) -> tuple[int, JsonDict] | None:
        """An injected HTTP 500 or errcode for this call, if one is queued for it.

        Plain entries hit token-authenticated API calls; gettoken and the robot webhook
        only fail when an entry names their path.
        """
        plain = path not in UNAUTHENTICATED
        if self.config.http_500_next > 0 and plain:
            self.config.http_500_next -= 1
            self.store.save_config(self.config.persisted())
            return 500, {"errcode": -1, "errmsg": "emulated HTTP 500"}
        for i, entry in enumerate(self.config.fail_next):
            target = entry.get("path") if isinstance(entry, dict) else None
            if (target is None and plain) or (target and path.endswith(target)):
                self.config.fail_next.pop(i)
                self.store.save_config(self.config.persisted())
                code = int(entry["errcode"] if isinstance(entry, dict) else entry)
                return error_answer(code, f"{meaning(code)} (emulated)")
        return None

    def check_rate(self, key: str, per_minute: int | None) -> None:
        """45009 when `key` already had `per_minute` accepted calls in the last 60 s."""
        if per_minute is None:
            return
        now = self.clock()
        window = self._accepted[key]
        while window and now - window[0] >= RATE_WINDOW:
            window.popleft()
        if len(window) >= per_minute:
            raise ApiError(45009, "api freq out of limit (emulated)")
        window.append(now)

    def _check_token(self, token: str | None) -> None:
        if not token:
            raise ApiError(41001)
        expires_at = self._tokens.get(token)
        if expires_at is None:
            raise ApiError(40014)
        if self.clock() >= expires_at:
            raise ApiError(42001)

    def _admin(self, method: str, path: str, body: bytes) -> tuple[int, JsonDict]:
        try:
            if (method, path) == ("POST", "/emulator/config"):
                return 200, {"errcode": 0, "config": self.configure(**parse_json(body)).public()}
            if (method, path) == ("POST", "/emulator/reset"):
                self.reset()
                return 200, {"errcode": 0, "errmsg": "ok"}
            if (method, path) == ("GET", "/emulator/state"):
                return 200, {"errcode": 0, **self.state()}
            if (method, path) == ("POST", "/emulator/names"):
                return 200, {"errcode": 0, "names": self.set_names(parse_json(body))}
            if path == DIRECTORY_ADMIN or path.startswith(DIRECTORY_ADMIN + "/"):
                return 200, {"errcode": 0, **self.directory_admin(method, path, parse_json(body))}
            if path == CALLBACK_ADMIN or path.startswith(CALLBACK_ADMIN + "/"):
                return 200, {"errcode": 0, **callback_admin(self, method, path, parse_json(body))}
        except ApiError as err:
            return 400, {"errcode": err.errcode, "errmsg": err.errmsg}
        except (KeyError, TypeError, ValueError) as err:
            return 400, {"errcode": 40058, "errmsg": str(err)}
        return 404, {"errcode": 404, "errmsg": f"no such endpoint: {method} {path}"}


ROUTES: dict[tuple[str, str], Route] = {
    ("GET", GETTOKEN): MassMessages._gettoken,
    ("POST", EXTERNALCONTACT + "add_msg_template"): MassMessages._add_msg_template,
    ("POST", EXTERNALCONTACT + "get_groupmsg_task"): MassMessages._get_groupmsg_task,
    ("POST", EXTERNALCONTACT + "get_groupmsg_send_result"): MassMessages._get_groupmsg_send_result,
    ("POST", EXTERNALCONTACT + "get_groupmsg_list_v2"): MassMessages._get_groupmsg_list_v2,
    ("POST", EXTERNALCONTACT + "remind_groupmsg_send"): MassMessages._remind_groupmsg_send,
    ("POST", EXTERNALCONTACT + "cancel_groupmsg_send"): MassMessages._cancel_groupmsg_send,
    ("POST", WEBHOOK): MassMessages._webhook_send,
}
ROUTES.update(WELCOME_ROUTES)  # welcome messages with the WelcomeCode of a callback
ROUTES.update(DIRECTORY_ROUTES)  # the directory: follow users, contacts, groups, corp tags
ROUTES.update(TAG_ROUTES)  # mark_tag and add_corp_tag (channels/emulator/tags.py)
ROUTES.update(MEDIA_ROUTES)  # media/upload and media/uploadimg (channels/emulator/media.py)
ROUTES.update(GROUP_WELCOME_ROUTES)  # group_welcome_template add/edit/get/del
ROUTES.update(MOMENT_ROUTES)  # moments tasks (channels/emulator/moments.py)
UNAUTHENTICATED = frozenset({GETTOKEN, WEBHOOK})  # no access_token, no plain faults
PAGES = frozenset({"/", "/emulator/outbox"})  # the sent-messages page (HTML)
