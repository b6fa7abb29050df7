"""What the emulator remembers (mass messages, tokens, robot posts) and the WeCom endpoints that use it."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import secrets
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from channels.emulator.config import (
    MAX_LIST_PAGE,
    MAX_LIST_WINDOW,
    MAX_PAGE,
    REMIND_WINDOW,
    WEBHOOK,
    ApiError,
    EmulatorConfig,
    JsonDict,
)
from channels.emulator.media import check_attachments
from channels.emulator.persistence import MemoryStore, Snapshot
from channels.emulator.wire import (
    check_robot_message,
    check_text,
    paged,
    period_key,
    targets_of,
)


@dataclass
class StoredMessage:
    """A mass-message task as WeCom keeps it: targets, confirmation inputs, reminders, cancellation."""

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
        """The message as JSON."""
        return dataclasses.asdict(self)


class MassMessages:
    """The emulator's remembered state and the WeCom endpoints over it (called under the lock).

    Every change is written to `store` before the answer goes out, so a msgid a caller has
    seen survives a restart when the store is a file.
    """

    config: EmulatorConfig
    clock: Callable[[], float]
    store: MemoryStore
    check_rate: Callable[[str, int | None], None]

    def forget(self) -> None:
        """Start with nothing remembered (the store is cleared separately)."""
        self.tokens_issued = 0
        self._tokens: dict[str, float] = {}
        self._messages: dict[str, StoredMessage] = {}
        # Each customer's single messages, for the caps; built on the first cap check only.
        self._by_customer: defaultdict[str, list[StoredMessage]] | None = None
        self.robot_posts: defaultdict[str, list[JsonDict]] = defaultdict(list)
        self.names: dict[str, str] = {}  # display names of userids, chat ids, customers, robot keys

    def remember(self, snapshot: Snapshot) -> None:
        """Take up the state a store loaded."""
        self.forget()
        self._tokens.update(snapshot.tokens)
        for key, posts in snapshot.robot_posts.items():
            self.robot_posts[key].extend(posts)
        self.names.update(snapshot.names)
        for row in snapshot.messages:
            self._keep(StoredMessage(**row))

    def newest_first(self) -> Iterator[StoredMessage]:
        """The mass messages, newest first (iterate under the lock)."""
        return reversed(self._messages.values())

    def task_results(self, message: StoredMessage) -> tuple[float | None, list[JsonDict]]:
        """When the sender confirmed `message` (None: not yet) and its `send_list` rows, as the API answers."""
        return (
            self._confirmed_at(message, message.sender, self.clock()),
            self._send_rows(message, message.sender),
        )

    def _keep(self, message: StoredMessage) -> None:
        self._messages[message.msgid] = message
        if self._by_customer is not None:
            _index(self._by_customer, message)

    def _customer_messages(self, customer: str) -> list[StoredMessage]:
        """The single messages that reached `customer` (not in their fail list), oldest first."""
        if self._by_customer is None:
            self._by_customer = defaultdict(list)
            for message in self._messages.values():
                _index(self._by_customer, message)
        return self._by_customer[customer]

    # -- WeCom endpoints ---------------------------------------------------

    def _gettoken(self, query: dict[str, str], _: JsonDict) -> JsonDict:
        cfg = self.config
        if not query.get("corpid") or (cfg.corp_id and query["corpid"] != cfg.corp_id):
            raise ApiError(40013)
        if not query.get("corpsecret") or (
            cfg.corp_secret and query["corpsecret"] != cfg.corp_secret
        ):
            raise ApiError(40001)
        token = f"emu-{secrets.token_hex(16)}"
        expires_at = self.clock() + cfg.token_ttl
        self.store.save_token(token, expires_at)
        self._tokens[token] = expires_at
        self.tokens_issued += 1
        return {"access_token": token, "expires_in": max(0, math.floor(cfg.token_ttl))}

    def _add_msg_template(self, _: dict[str, str], body: JsonDict) -> JsonDict:
        chat_type = body.get("chat_type", "single")
        sender = body.get("sender") or ""
        targets = targets_of(chat_type, body, sender)
        check_text(body)
        check_attachments(self, body.get("attachments"))
        dead = set(self.config.deleted_ids) | set(self.config.unknown_ids)
        message = StoredMessage(
            msgid=f"msg{secrets.token_hex(12)}",
            chat_type=chat_type,
            sender=sender or "owner",
            targets=targets,
            fail_list=[t for t in targets if t in dead],
            content=(body.get("text") or {}).get("content", ""),
            create_time=self.clock(),
            seq=len(self._messages),
            attachments=list(body.get("attachments") or []),
        )
        self.store.add_message(vars(message))
        self._keep(message)
        return {"fail_list": message.fail_list, "msgid": message.msgid}

    def _get_groupmsg_task(self, _: dict[str, str], body: JsonDict) -> JsonDict:
        message = self._dispatched(body)
        sent_at = self._confirmed_at(message, message.sender, self.clock())
        task: JsonDict = {"userid": message.sender, "status": 0}
        if sent_at is not None:
            task.update(status=2, send_time=int(sent_at))
        return paged([task], body, "task_list", MAX_PAGE)

    def _get_groupmsg_send_result(self, _: dict[str, str], body: JsonDict) -> JsonDict:
        message = self._dispatched(body)
        userid = body.get("userid") or ""
        if not userid:
            raise ApiError(40058, "missing userid")
        rows = self._send_rows(message, userid) if userid == message.sender else []
        return paged(rows, body, "send_list", MAX_PAGE)

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
        return paged(rows, body, "group_msg_list", MAX_LIST_PAGE)

    def _remind_groupmsg_send(self, _: dict[str, str], body: JsonDict) -> JsonDict:
        message = self._message(body)
        now = self.clock()
        reminders = [t for t in message.reminders if now - t < REMIND_WINDOW]
        if len(reminders) >= self.config.remind_limit:
            raise ApiError(41094)
        reminders.append(now)
        self.store.update_message(message.msgid, reminders, message.cancelled_at)
        message.reminders = reminders
        return {}

    def _cancel_groupmsg_send(self, _: dict[str, str], body: JsonDict) -> JsonDict:
        message = self._message(body)
        if message.cancelled_at is not None:
            raise ApiError(41093)
        now = self.clock()
        self.store.update_message(message.msgid, message.reminders, now)
        message.cancelled_at = now
        return {}

    def _webhook_send(self, query: dict[str, str], body: JsonDict) -> JsonDict:
        key = query.get("key") or ""
        known = self.config.robot_keys
        if not key or (known is not None and key not in known):
            raise ApiError(93000)
        if key in self.config.robot_disabled_keys:
            raise ApiError(93004)
        check_robot_message(body)
        self.check_rate(f"{WEBHOOK}?{key}", self.config.robot_per_minute)
        post = {**body, "time": self.clock()}
        self.store.add_robot_post(key, post)
        self.robot_posts[key].append(post)
        return {}

    # -- helpers -----------------------------------------------------------

    def _message(self, body: JsonDict) -> StoredMessage:
        msgid = body.get("msgid")
        if not msgid:
            raise ApiError(41046)
        message = self._messages.get(msgid)
        if message is None:
            raise ApiError(41047)
        return message

    def _dispatched(self, body: JsonDict) -> StoredMessage:
        """The message of `body`, or 41063 while it is still being dispatched."""
        message = self._message(body)
        if self.clock() < message.create_time + self.config.dispatch_seconds:
            raise ApiError(41063)
        return message

    def _confirmed_at(self, message: StoredMessage, userid: str, now: float) -> float | None:
        """When `userid` confirmed `message`, or None: decided by a hash of msgid and userid."""
        digest = hashlib.sha256(f"{message.msgid}:{userid}".encode()).digest()
        share = int.from_bytes(digest[:8], "big") / 2**64
        if share >= self.config.confirm_share:
            return None
        at = message.create_time + self.config.confirm_delay_seconds
        if now < at or (message.cancelled_at is not None and message.cancelled_at < at):
            return None
        return at

    def _send_rows(self, message: StoredMessage, userid: str) -> list[JsonDict]:
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

    def _capped(self, message: StoredMessage, target: str, now: float) -> bool:
        """Whether a sent `message` was refused to `target` for the customer's cap (status 3)."""
        if message.chat_type != "single":
            return False
        return target in self.config.capped_ids or self._over_cap(message, target, now)

    def _over_cap(self, message: StoredMessage, customer: str, now: float) -> bool:
        """Whether `message` reached `customer` after the cap was used up (status 3).

        The customer's messages count in send order, once sent; a capped one does not count.
        """
        caps = self.config.caps()
        if not caps:
            return False
        sent = []
        for other in self._customer_messages(customer):
            at = self._confirmed_at(other, other.sender, now)
            if at is not None:
                sent.append((at, other.seq, other))
        counts: Counter[tuple[str, str]] = Counter()
        for at, _, other in sorted(sent, key=lambda item: item[:2]):
            periods = [(period, period_key(period, at)) for period in caps]
            over = any(counts[p] >= caps[p[0]] for p in periods)
            if other is message:
                return over
            if not over:
                counts.update(periods)
        return False


def _index(by_customer: defaultdict[str, list[StoredMessage]], message: StoredMessage) -> None:
    """Add a single message to each of its customers' lists."""
    if message.chat_type == "single":
        for target in set(message.targets) - set(message.fail_list):
            by_customer[target].append(message)


Route = Callable[[MassMessages, dict[str, str], JsonDict], JsonDict]
