"""Local WeCom emulator: a real HTTP server speaking WeCom's mass-message API, with injectable faults.

Endpoints (WeCom's JSON shapes; see channels/EMULATOR.md):
    GET  /cgi-bin/gettoken
    POST /cgi-bin/externalcontact/add_msg_template
    POST /cgi-bin/externalcontact/get_groupmsg_task
    POST /cgi-bin/externalcontact/get_groupmsg_send_result
    POST /cgi-bin/externalcontact/get_groupmsg_list_v2
    POST /cgi-bin/externalcontact/remind_groupmsg_send
    POST /cgi-bin/externalcontact/cancel_groupmsg_send
    POST /cgi-bin/webhook/send                        (group robots, `?key=`)
Admin: POST /emulator/config (JSON merge), GET /emulator/state, POST /emulator/reset.

Use it in tests as `with WeComEmulator(EmulatorConfig(...)) as emu: ... emu.url`,
or from the command line with `serve_forever(port)`.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import math
import random
import secrets
import socket
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from channels.base import MAX_CHAT_IDS, MAX_EXTERNAL_USERIDS, MAX_TEXT_BYTES
from channels.errcodes import meaning

logger = logging.getLogger(__name__)

JsonDict = dict[str, Any]
EXTERNALCONTACT = "/cgi-bin/externalcontact/"
GETTOKEN = "/cgi-bin/gettoken"
WEBHOOK = "/cgi-bin/webhook/send"
MAX_PAGE = 1000
MAX_LIST_PAGE = 100
MAX_ATTACHMENTS = 9
MAX_LIST_WINDOW = 31 * 86400
REMIND_WINDOW = 86400
RATE_WINDOW = 60.0  # seconds: calls per minute are counted over a sliding minute
MAX_ROBOT_TEXT_BYTES = 2048
MAX_ROBOT_MARKDOWN_BYTES = 4096
LOCAL_TZ = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")  # caps count local days


@dataclass
class EmulatorConfig:
    """How the emulator behaves; every field can be changed at run time via POST /emulator/config."""

    corp_id: str | None = None  # when set, gettoken checks corpid (40013)
    corp_secret: str | None = None  # when set, gettoken checks corpsecret (40001)
    token_ttl: float = 7200.0  # seconds a token lives; then 42001
    confirm_share: float = 1.0  # share of (msgid, sender) tasks the staff member confirms
    confirm_delay_seconds: float = 0.0  # seconds after creation a confirming sender confirms
    dispatch_seconds: float = 0.0  # result APIs answer 41063 this long after creation
    # errcodes (or {"errcode", "path"}) to answer next
    fail_next: list[Any] = field(default_factory=list)
    http_500_next: int = 0  # answer the next n API calls with HTTP 500
    lose_answer_next: int = 0  # carry out the next n API calls, then drop the connection
    delay_seconds: float = 0.0  # sleep before answering every API call
    delay_jitter_seconds: float = 0.0  # plus a random 0..jitter seconds
    rate_limit_per_minute: int | None = None  # calls per API per sliding minute; more → 45009
    max_concurrent: int | None = None  # requests in flight per API; more → 45033
    deleted_ids: list[str] = field(default_factory=list)  # in fail_list; status 2 in results
    unknown_ids: list[str] = field(default_factory=list)  # in fail_list; absent from results
    capped_ids: list[str] = field(default_factory=list)  # status 3 (over the customer's limit)
    # Mass messages a customer receives per local day / ISO week / month; more → status 3.
    customer_cap_day: int | None = None
    customer_cap_week: int | None = None
    customer_cap_month: int | None = None
    remind_limit: int = 3  # reminders per msgid in 24 h; more → 41094
    robot_keys: list[str] | None = None  # valid webhook keys (None: any); others → 93000
    robot_disabled_keys: list[str] = field(default_factory=list)  # → 93004
    robot_per_minute: int | None = 20  # posts per robot per sliding minute; more → 45009

    def merged(self, changes: JsonDict) -> EmulatorConfig:
        """A copy with `changes` applied; unknown keys raise `KeyError`."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise KeyError(f"unknown config keys: {', '.join(unknown)}")
        return dataclasses.replace(copy.deepcopy(self), **copy.deepcopy(changes))

    def public(self) -> JsonDict:
        """The config as JSON, with the corp secret masked."""
        data = dataclasses.asdict(self)
        if data["corp_secret"]:
            data["corp_secret"] = "***"
        return data

    def caps(self) -> dict[str, int]:
        """The per-customer caps in force, by period (`day`, `week`, `month`)."""
        caps = {
            "day": self.customer_cap_day,
            "week": self.customer_cap_week,
            "month": self.customer_cap_month,
        }
        return {period: cap for period, cap in caps.items() if cap is not None}


@dataclass
class _Message:
    msgid: str
    chat_type: str
    sender: str
    targets: list[str]
    fail_list: list[str]
    content: str
    create_time: float
    seq: int  # creation order, to break ties between equal send times
    attachments: list[JsonDict] = field(default_factory=list)
    reminders: list[float] = field(default_factory=list)
    cancelled_at: float | None = None

    def public(self) -> JsonDict:
        return dataclasses.asdict(self)


class ApiError(Exception):
    """An answer with a nonzero errcode (HTTP 200, as WeCom does)."""

    def __init__(self, errcode: int, errmsg: str | None = None):
        super().__init__(errcode)
        self.errcode = errcode
        self.errmsg = errmsg or meaning(errcode)


class WeComEmulator:
    """The emulator's state and HTTP server (127.0.0.1, port 0 picks a free one)."""

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._initial = copy.deepcopy(config or EmulatorConfig())
        self.config = copy.deepcopy(self._initial)
        self.clock = clock
        self._host, self._port = host, port
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._clear()

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> WeComEmulator:
        """Bind and serve in a daemon thread."""
        if self._server is None:
            self._server = _Server((self._host, self._port), _Handler, self)
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
        """Stop serving, close open connections and release the port."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

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

    # -- admin (also over HTTP) -------------------------------------------

    def configure(self, **changes: Any) -> EmulatorConfig:
        """Merge `changes` into the config (same as POST /emulator/config)."""
        with self._lock:
            self.config = self.config.merged(changes)
            return self.config

    def reset(self) -> None:
        """Forget messages, tokens and counts; restore the config given at construction."""
        with self._lock:
            self.config = copy.deepcopy(self._initial)
            self._clear()

    def state(self) -> JsonDict:
        """Recorded messages, call counts and the config (secret masked)."""
        with self._lock:
            return {
                "config": self.config.public(),
                "calls": dict(self.calls),
                "tokens_issued": self.tokens_issued,
                "messages": [m.public() for m in self._messages.values()],
                "robot_posts": {key: list(posts) for key, posts in self.robot_posts.items()},
            }

    @property
    def messages(self) -> list[JsonDict]:
        """The mass messages created so far, oldest first."""
        return self.state()["messages"]

    def _clear(self) -> None:
        self.calls: Counter[str] = Counter()
        self.tokens_issued = 0
        self._tokens: dict[str, float] = {}
        self._messages: dict[str, _Message] = {}
        self._by_customer: defaultdict[str, list[_Message]] = defaultdict(list)
        self._accepted: defaultdict[str, deque[float]] = defaultdict(deque)
        self._in_flight: Counter[str] = Counter()
        self.robot_posts: defaultdict[str, list[JsonDict]] = defaultdict(list)

    # -- request handling --------------------------------------------------

    def handle(
        self, method: str, path: str, query: dict[str, str], body: bytes
    ) -> tuple[int, JsonDict] | None:
        """Answer one request: (HTTP status, JSON body), or None to drop the connection."""
        if path.startswith("/emulator/"):
            return self._admin(method, path, body)
        route = _ROUTES.get((method, path))
        if route is None:
            return 404, {"errcode": 404, "errmsg": f"no such endpoint: {method} {path}"}
        with self._lock:
            self.calls[path] += 1
            self._in_flight[path] += 1
            crowded = _over(self.config.max_concurrent, self._in_flight[path])
            delay = self.config.delay_seconds + random.uniform(0, self.config.delay_jitter_seconds)
        try:
            if crowded:
                return _error(45033)
            if delay > 0:
                time.sleep(delay)
            return self._answer(path, route, query, body)
        finally:
            with self._lock:
                self._in_flight[path] -= 1

    def _answer(
        self, path: str, route: _Route, query: dict[str, str], body: bytes
    ) -> tuple[int, JsonDict] | None:
        """The answer of a routed call, under the lock: faults, rate limit, token, then the route."""
        try:
            with self._lock:
                if (fault := self._take_fault(path)) is not None:
                    return fault
                if path not in _UNAUTHENTICATED:
                    self._check_rate(path, self.config.rate_limit_per_minute)
                    self._check_token(query.get("access_token"))
                answer = {"errcode": 0, "errmsg": "ok", **route(self, query, _json(body))}
                if path not in _UNAUTHENTICATED and self.config.lose_answer_next > 0:
                    self.config.lose_answer_next -= 1
                    return None  # done, but the caller never hears of it
                return 200, answer
        except ApiError as err:
            return _error(err.errcode, err.errmsg)

    def _take_fault(self, path: str) -> tuple[int, JsonDict] | None:
        """An injected HTTP 500 or errcode for this call, if one is queued for it.

        Plain entries hit token-authenticated API calls; gettoken and the robot webhook
        only fail when an entry names their path.
        """
        plain = path not in _UNAUTHENTICATED
        if self.config.http_500_next > 0 and plain:
            self.config.http_500_next -= 1
            return 500, {"errcode": -1, "errmsg": "emulated HTTP 500"}
        for i, entry in enumerate(self.config.fail_next):
            target = entry.get("path") if isinstance(entry, dict) else None
            if (target is None and plain) or (target and path.endswith(target)):
                self.config.fail_next.pop(i)
                code = int(entry["errcode"] if isinstance(entry, dict) else entry)
                return _error(code, f"{meaning(code)} (emulated)")
        return None

    def _check_rate(self, key: str, per_minute: int | None) -> None:
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
                return 200, {"errcode": 0, "config": self.configure(**_json(body)).public()}
            if (method, path) == ("POST", "/emulator/reset"):
                self.reset()
                return 200, {"errcode": 0, "errmsg": "ok"}
            if (method, path) == ("GET", "/emulator/state"):
                return 200, {"errcode": 0, **self.state()}
        except (ApiError, KeyError, TypeError) as err:
            return 400, {"errcode": 40058, "errmsg": str(err)}
        return 404, {"errcode": 404, "errmsg": f"no such endpoint: {method} {path}"}

    # -- WeCom endpoints (called under the lock) ---------------------------

    def _gettoken(self, query: dict[str, str], _: JsonDict) -> JsonDict:
        cfg = self.config
        if not query.get("corpid") or (cfg.corp_id and query["corpid"] != cfg.corp_id):
            raise ApiError(40013)
        if not query.get("corpsecret") or (
            cfg.corp_secret and query["corpsecret"] != cfg.corp_secret
        ):
            raise ApiError(40001)
        token = f"emu-{secrets.token_hex(16)}"
        self._tokens[token] = self.clock() + cfg.token_ttl
        self.tokens_issued += 1
        return {"access_token": token, "expires_in": max(0, math.floor(cfg.token_ttl))}

    def _add_msg_template(self, _: dict[str, str], body: JsonDict) -> JsonDict:
        chat_type = body.get("chat_type", "single")
        sender = body.get("sender") or ""
        targets = _targets(chat_type, body, sender)
        _check_text(body)
        now = self.clock()
        msgid = f"msg{secrets.token_hex(12)}"
        dead = set(self.config.deleted_ids) | set(self.config.unknown_ids)
        message = _Message(
            msgid=msgid,
            chat_type=chat_type,
            sender=sender or "owner",
            targets=targets,
            fail_list=[t for t in targets if t in dead],
            content=(body.get("text") or {}).get("content", ""),
            create_time=now,
            seq=len(self._messages),
            attachments=list(body.get("attachments") or []),
        )
        self._messages[msgid] = message
        if chat_type == "single":
            for target in set(targets) - set(message.fail_list):
                self._by_customer[target].append(message)
        return {"fail_list": message.fail_list, "msgid": msgid}

    def _over_cap(self, message: _Message, customer: str, now: float) -> bool:
        """Whether `message` reached `customer` after the cap was used up (status 3).

        The customer's messages count in send order, once sent; a capped one does not count.
        """
        caps = self.config.caps()
        if not caps:
            return False
        sent = []
        for other in self._by_customer[customer]:
            at = self._confirmed_at(other, other.sender, now)
            if at is not None:
                sent.append((at, other.seq, other))
        counts: Counter[tuple[str, str]] = Counter()
        for at, _, other in sorted(sent, key=lambda item: item[:2]):
            periods = [(period, _period(period, at)) for period in caps]
            over = any(counts[p] >= caps[p[0]] for p in periods)
            if other is message:
                return over
            if not over:
                counts.update(periods)
        return False

    def _get_groupmsg_task(self, _: dict[str, str], body: JsonDict) -> JsonDict:
        message = self._dispatched(body)
        sent_at = self._confirmed_at(message, message.sender, self.clock())
        task: JsonDict = {"userid": message.sender, "status": 0}
        if sent_at is not None:
            task.update(status=2, send_time=int(sent_at))
        return _paged([task], body, "task_list", MAX_PAGE)

    def _get_groupmsg_send_result(self, _: dict[str, str], body: JsonDict) -> JsonDict:
        message = self._dispatched(body)
        userid = body.get("userid") or ""
        if not userid:
            raise ApiError(40058, "missing userid")
        rows = self._send_rows(message, userid) if userid == message.sender else []
        return _paged(rows, body, "send_list", MAX_PAGE)

    def _send_rows(self, message: _Message, userid: str) -> list[JsonDict]:
        now = self.clock()
        sent_at = self._confirmed_at(message, userid, now)
        deleted = set(self.config.deleted_ids)
        key = "external_userid" if message.chat_type == "single" else "chat_id"
        rows = []
        for target in message.targets:
            if target in message.fail_list and target not in deleted:
                continue  # unknown ids were refused outright
            row: JsonDict = {key: target, "userid": userid, "status": 0}
            if target in deleted:
                row["status"] = 2
            elif sent_at is not None and self._capped(message, target, now):
                row["status"] = 3
            elif sent_at is not None:
                row.update(status=1, send_time=int(sent_at))
            rows.append(row)
        return rows

    def _capped(self, message: _Message, target: str, now: float) -> bool:
        """Whether a sent `message` was refused to `target` for the customer's cap (status 3)."""
        if message.chat_type != "single":
            return False
        return target in self.config.capped_ids or self._over_cap(message, target, now)

    def _get_groupmsg_list_v2(self, _: dict[str, str], body: JsonDict) -> JsonDict:
        try:
            start, end = int(body["start_time"]), int(body["end_time"])
        except (KeyError, TypeError, ValueError):
            raise ApiError(40058, "start_time and end_time are required") from None
        if end < start or end - start > MAX_LIST_WINDOW:
            raise ApiError(40058, "the time window must be at most one month")
        chat_type = body.get("chat_type", "single")
        creator = body.get("creator")
        if body.get("filter_type", 2) == 1:  # created by members in the app: none here
            return {"next_cursor": "", "group_msg_list": []}
        rows = [
            {
                "msgid": m.msgid,
                "creator": m.sender,
                "create_time": int(m.create_time),
                "create_type": 0,
                "text": {"content": m.content},
                "attachments": m.attachments,
            }
            for m in self._messages.values()
            if m.chat_type == chat_type
            and start <= m.create_time <= end
            and (not creator or m.sender == creator)
        ]
        return _paged(rows, body, "group_msg_list", MAX_LIST_PAGE)

    def _remind_groupmsg_send(self, _: dict[str, str], body: JsonDict) -> JsonDict:
        message = self._message(body)
        now = self.clock()
        message.reminders = [t for t in message.reminders if now - t < REMIND_WINDOW]
        if len(message.reminders) >= self.config.remind_limit:
            raise ApiError(41094)
        message.reminders.append(now)
        return {}

    def _cancel_groupmsg_send(self, _: dict[str, str], body: JsonDict) -> JsonDict:
        message = self._message(body)
        if message.cancelled_at is not None:
            raise ApiError(41093)
        message.cancelled_at = self.clock()
        return {}

    def _webhook_send(self, query: dict[str, str], body: JsonDict) -> JsonDict:
        key = query.get("key") or ""
        known = self.config.robot_keys
        if not key or (known is not None and key not in known):
            raise ApiError(93000)
        if key in self.config.robot_disabled_keys:
            raise ApiError(93004)
        _check_robot_message(body)
        self._check_rate(f"{WEBHOOK}?{key}", self.config.robot_per_minute)
        self.robot_posts[key].append({**body, "time": self.clock()})
        return {}

    # -- helpers -----------------------------------------------------------

    def _message(self, body: JsonDict) -> _Message:
        msgid = body.get("msgid")
        if not msgid:
            raise ApiError(41046)
        message = self._messages.get(msgid)
        if message is None:
            raise ApiError(41047)
        return message

    def _dispatched(self, body: JsonDict) -> _Message:
        """The message of `body`, or 41063 while it is still being dispatched."""
        message = self._message(body)
        if self.clock() < message.create_time + self.config.dispatch_seconds:
            raise ApiError(41063)
        return message

    def _confirmed_at(self, message: _Message, userid: str, now: float) -> float | None:
        """When `userid` confirmed `message`, or None: decided by a hash of msgid and userid."""
        digest = hashlib.sha256(f"{message.msgid}:{userid}".encode()).digest()
        share = int.from_bytes(digest[:8], "big") / 2**64
        if share >= self.config.confirm_share:
            return None
        at = message.create_time + self.config.confirm_delay_seconds
        if now < at or (message.cancelled_at is not None and message.cancelled_at < at):
            return None
        return at


_Route = Callable[[WeComEmulator, dict[str, str], JsonDict], JsonDict]
_ROUTES: dict[tuple[str, str], _Route] = {
    ("GET", GETTOKEN): WeComEmulator._gettoken,
    ("POST", EXTERNALCONTACT + "add_msg_template"): WeComEmulator._add_msg_template,
    ("POST", EXTERNALCONTACT + "get_groupmsg_task"): WeComEmulator._get_groupmsg_task,
    ("POST", EXTERNALCONTACT + "get_groupmsg_send_result"): WeComEmulator._get_groupmsg_send_result,
    ("POST", EXTERNALCONTACT + "get_groupmsg_list_v2"): WeComEmulator._get_groupmsg_list_v2,
    ("POST", EXTERNALCONTACT + "remind_groupmsg_send"): WeComEmulator._remind_groupmsg_send,
    ("POST", EXTERNALCONTACT + "cancel_groupmsg_send"): WeComEmulator._cancel_groupmsg_send,
    ("POST", WEBHOOK): WeComEmulator._webhook_send,
}
_UNAUTHENTICATED = frozenset({GETTOKEN, WEBHOOK})  # no access_token, no plain faults


def _error(errcode: int, errmsg: str | None = None) -> tuple[int, JsonDict]:
    """A WeCom error answer: HTTP 200 with the errcode in the body."""
    return 200, {"errcode": errcode, "errmsg": errmsg or meaning(errcode)}


def _over(limit: int | None, count: int) -> bool:
    return limit is not None and count > limit


def _period(period: str, at: float) -> str:
    """The local day, ISO week or month `at` falls in, as a string key."""
    local = dt.datetime.fromtimestamp(at, LOCAL_TZ)
    if period == "day":
        return local.date().isoformat()
    if period == "week":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{local.year}-{local.month:02d}"


def _json(body: bytes) -> JsonDict:
    if not body.strip():
        return {}
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(40058, "invalid JSON body") from None
    if not isinstance(data, dict):
        raise ApiError(40058, "the JSON body must be an object")
    return data


def _targets(chat_type: str, body: JsonDict, sender: str) -> list[str]:
    """The targets of an add_msg_template body, validated against WeCom's limits."""
    if chat_type not in ("single", "group"):
        raise ApiError(40058, "chat_type must be single or group")
    if chat_type == "group":
        if not sender:
            raise ApiError(40058, "sender is required for group messages")
        key, limit = "chat_id_list", MAX_CHAT_IDS
    else:
        key, limit = "external_userid", MAX_EXTERNAL_USERIDS
    targets = body.get(key) or []
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise ApiError(40058, f"{key} must be a list of strings")
    if not targets:
        raise ApiError(41048)
    if len(targets) > limit:
        raise ApiError(40058, f"{key} has {len(targets)} items, at most {limit}")
    return targets


def _check_text(body: JsonDict) -> None:
    content = (body.get("text") or {}).get("content") or ""
    attachments = body.get("attachments") or []
    if len(attachments) > MAX_ATTACHMENTS:
        raise ApiError(41064)
    if not content.strip() and not attachments:
        raise ApiError(44004)
    if len(content.encode("utf-8")) > MAX_TEXT_BYTES:
        raise ApiError(45002)


def _check_robot_message(body: JsonDict) -> None:
    """Refuse a robot message WeCom would: unknown type, empty or over-long text or markdown."""
    msgtype = body.get("msgtype")
    if msgtype not in ("text", "markdown", "image", "news", "file", "template_card"):
        raise ApiError(40058, "invalid msgtype")
    if msgtype not in ("text", "markdown"):
        return
    content = (body.get(msgtype) or {}).get("content") or ""
    limit = MAX_ROBOT_TEXT_BYTES if msgtype == "text" else MAX_ROBOT_MARKDOWN_BYTES
    if not content.strip():
        raise ApiError(44004)
    if len(content.encode("utf-8")) > limit:
        raise ApiError(40058, f"{msgtype}.content exceed max length {limit}")


def _paged(rows: list[JsonDict], body: JsonDict, key: str, max_limit: int) -> JsonDict:
    """One page of `rows` from the body's cursor; `next_cursor` is empty on the last page."""
    limit = body.get("limit") or max_limit
    if not isinstance(limit, int) or not 0 < limit <= max_limit:
        raise ApiError(40058, f"limit must be 1..{max_limit}")
    cursor = body.get("cursor") or ""
    try:
        offset = int(cursor[1:]) if cursor else 0
    except ValueError:
        raise ApiError(40058, "invalid cursor") from None
    if cursor and (not cursor.startswith("c") or offset < 0):
        raise ApiError(40058, "invalid cursor")
    end = offset + limit
    return {key: rows[offset:end], "next_cursor": f"c{end}" if end < len(rows) else ""}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        emulator: WeComEmulator,
    ):
        super().__init__(address, handler)
        self.emulator = emulator
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def close_connections(self) -> None:
        """Shut open keep-alive connections so no handler keeps serving after stop()."""
        with self.connections_lock:
            for conn in self.connections:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.connections.clear()

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug(
            "emulator connection from %s ended with an error", client_address, exc_info=True
        )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def _answer(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        answer = self.server.emulator.handle(method, parts.path, query, body)
        if answer is None:
            self.close_connection = True  # the work is done; the caller gets no answer
            return
        status, payload = answer
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Log the method and path only: query strings carry tokens and secrets."""
        logger.debug("emulator: %s %s", self.command, urlsplit(self.path).path)


def serve_forever(
    port: int = 8931, *, host: str = "127.0.0.1", config: EmulatorConfig | None = None
) -> None:
    """Run the emulator in the foreground until Ctrl-C (the `sopflow emulator` command)."""
    emulator = WeComEmulator(config, host=host, port=port).start()
    logger.info("WeCom emulator serving on %s; press Ctrl-C to stop", emulator.url)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
