"""The emulator's WeCom directory: staff, external contacts and their follow relations, customer
groups and corp tags — generated deterministically (a million contacts in seconds) and changeable."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from channels.emulator.config import ApiError

JsonDict = dict[str, Any]
BASE_TIME = (
    1_672_531_200  # 2023-01-01 00:00 UTC: the generated relations' add times count from here
)
ADD_WAYS = (1, 2, 3, 201, 202)  # 扫描二维码, 搜索手机号, 名片分享, 内部成员共享, 管理员/负责人分配
TAG_GROUPS = (("属性", ("高价值", "价格敏感", "宝妈", "上班族")),
              ("渠道", ("门店扫码", "社群裂变", "直播间", "老带新")),
              ("兴趣", ("生鲜", "母婴", "家电", "美妆")))  # fmt: skip
MULTI_FOLLOW_EVERY = 10  # every 10th generated contact is also followed by the next staff member


def ext_id(k: int) -> str:
    """The external_userid of generated contact `k`."""
    return f"wmEmu{k:010d}"


@dataclass
class DirectoryWorld:
    """The directory WeCom would answer for: generated contacts live as integers until changed.

    `staff` are the follow users in order; `relations[userid]` lists the contacts they follow
    (an int is generated contact k, a str an added or changed one, kept in `contacts`).
    """

    staff: list[str] = field(default_factory=list)
    size: int = 0  # generated contacts 0..size-1
    relations: dict[str, list[int | str]] = field(default_factory=dict)
    contacts: dict[str, JsonDict] = field(default_factory=dict)  # added or edited contacts
    follows: dict[tuple[str, str], JsonDict] = field(
        default_factory=dict
    )  # (userid, ext) overrides
    groups: dict[str, JsonDict] = field(default_factory=dict)
    tag_groups: list[JsonDict] = field(default_factory=list)
    changes: int = 0  # admin changes so far (member_version, new ids)

    @classmethod
    def generate(
        cls,
        *,
        staff: int = 10,
        contacts: int = 200,
        groups_per_staff: int = 1,
        members_per_group: int = 10,
    ) -> DirectoryWorld:
        """`staff` follow users, `contacts` customers (contact k followed by staff k mod staff,
        every 10th also by the next one), groups of each staff member's first customers, 12 tags."""
        if staff < 1 or contacts < 0:
            raise ApiError(40058, "a directory needs staff >= 1 and contacts >= 0")
        userids = [f"staff{i:05d}" for i in range(staff)]
        world = cls(staff=userids, size=contacts, relations={u: [] for u in userids})
        lists = [world.relations[u] for u in userids]
        for k in range(contacts):
            lists[k % staff].append(k)
            if staff > 1 and k % MULTI_FOLLOW_EVERY == 0:
                lists[(k + 1) % staff].append(k)
        world.tag_groups = [
            {
                "group_id": f"etgrp{g}",
                "group_name": name,
                "create_time": BASE_TIME,
                "order": g,
                "tag": [
                    {"id": f"ettag{g}{t}", "name": tag, "create_time": BASE_TIME, "order": t}
                    for t, tag in enumerate(tags)
                ],
            }
            for g, (name, tags) in enumerate(TAG_GROUPS)
        ]
        for i, owner in enumerate(userids):
            for n in range(groups_per_staff):
                members = lists[i][n * members_per_group : (n + 1) * members_per_group]
                chat_id = f"wrEmu{i:05d}x{n:02d}"
                world.groups[chat_id] = {
                    "chat_id": chat_id,
                    "name": f"{owner}的客户群{n + 1}",
                    "owner": owner,
                    "create_time": BASE_TIME + i * 60 + n,
                    "status": 0,
                    "notice": "",
                    "version": 1,
                    "members": [_member(owner, 1, BASE_TIME)]
                    + [_member(world.ext_of(m), 2, BASE_TIME + 3600) for m in members],
                }
        return world

    # -- reading ------------------------------------------------------------

    def ext_of(self, item: int | str) -> str:
        return item if isinstance(item, str) else ext_id(item)

    def tag_ids(self) -> list[str]:
        return [t["id"] for g in self.tag_groups for t in g["tag"]]

    def page_items(self, userid: str, items: list[int | str]) -> list[JsonDict]:
        """batch/get_by_user's `{external_contact, follow_info}` of `userid`'s relations with
        `items`: a generated contact nobody changed is built straight from its number (a page
        of 100 in well under a millisecond: no world is rebuilt per request)."""
        tags = self.tag_ids()
        first = self._first_follower
        rows: list[JsonDict] = []
        for item in items:
            if isinstance(item, str) or item >= self.size:
                ext = self.ext_of(item)
                contact, follow = self.contact(ext) or {}, self.follow_info(userid, item)
            else:
                ext = ext_id(item)
                if ext in self.contacts or (userid, ext) in self.follows:
                    contact, follow = self.contact(ext) or {}, self.follow_info(userid, item)
                else:
                    contact = _generated_contact(ext, item)
                    follow = _generated_follow(userid, item, tags, first(item) == userid)
            rows.append({"external_contact": contact, "follow_info": follow})
        return rows

    def contact(self, ext: str) -> JsonDict | None:
        """The `external_contact` object of `ext`, or None when WeCom would not know it."""
        if ext in self.contacts:
            return copy.deepcopy(self.contacts[ext])
        k = _generated(ext, self.size)
        return None if k is None else _generated_contact(ext, k)

    def follow_info(self, userid: str, item: int | str) -> JsonDict:
        """The `follow_info` of `userid`'s relation with a contact."""
        ext = self.ext_of(item)
        if (userid, ext) in self.follows:
            return copy.deepcopy(self.follows[(userid, ext)])
        k = _generated(ext, self.size) or 0
        return _generated_follow(userid, k, self.tag_ids(), self._first_follower(k) == userid)

    def followers(self, ext: str) -> list[str]:
        """The staff following `ext`."""
        k = _generated(ext, self.size)
        candidates = []
        if k is not None:
            candidates.append(self._first_follower(k))
            if len(self.staff) > 1 and k % MULTI_FOLLOW_EVERY == 0:
                candidates.append(self.staff[(k + 1) % len(self.staff)])
        candidates += [u for (u, e) in self.follows if e == ext]
        found: list[str] = []
        for user in candidates:
            items = self.relations.get(user, ())
            if user not in found and (ext in items or (k is not None and k in items)):
                found.append(user)
        return found

    def iter_relations(self) -> Iterator[tuple[str, str]]:
        """Every (userid, external_userid) relation, staff by staff."""
        for userid in self.staff:
            for item in self.relations.get(userid, ()):
                yield userid, self.ext_of(item)

    def counts(self) -> JsonDict:
        """How big the world is."""
        externals = {self.ext_of(i) for items in self.relations.values() for i in items}
        live = [g for g in self.groups.values() if g["status"] != "dismissed"]
        return {
            "staff": len(self.staff),
            "contacts": len(externals),
            "relations": sum(len(items) for items in self.relations.values()),
            "groups": len(live),
            "group_members": sum(len(g["members"]) for g in live),
            "tags": len(self.tag_ids()),
        }

    # -- changing (admin) ---------------------------------------------------

    def add_contact(self, body: JsonDict) -> JsonDict:
        """Add a relation (and the contact, when new): `userid`, optional `external_userid`,
        `external_contact` fields and `follow_info` fields."""
        userid = self._known_staff(body.get("userid"))
        self.changes += 1
        ext = body.get("external_userid") or f"wmAdd{self.changes:010d}"
        current = self.contact(ext)
        contact = {**(current or {"external_userid": ext, "name": f"新客户{self.changes}",
                                  "type": 1, "avatar": "", "gender": 0}),
                   **(body.get("external_contact") or {}), "external_userid": ext}  # fmt: skip
        if userid in self.followers(ext):
            raise ApiError(40058, f"{userid} already follows {ext}")
        self.contacts[ext] = contact
        self.follows[(userid, ext)] = {
            "userid": userid, "remark": "", "description": "", "createtime": BASE_TIME,
            "tag_id": [], "remark_mobiles": [], "add_way": 1, "state": "", "oper_userid": userid,
            **(body.get("follow_info") or {}), }  # fmt: skip
        self.relations[userid].append(ext)
        return {"external_userid": ext}

    def remove_contact(self, body: JsonDict) -> JsonDict:
        """Remove `userid`'s relation with `external_userid` (no userid: every relation)."""
        ext = body.get("external_userid") or ""
        users = [self._known_staff(body["userid"])] if body.get("userid") else self.staff
        removed = 0
        for user in users:
            items = self.relations[user]
            kept = [i for i in items if self.ext_of(i) != ext]
            removed += len(items) - len(kept)
            self.relations[user] = kept
        if not removed:
            raise ApiError(84061, f"no relation with {ext}")
        return {"removed": removed}

    def edit_contact(self, body: JsonDict) -> JsonDict:
        """Change a contact's fields (`external_contact`) and/or one relation's (`userid`, `follow_info`)."""
        ext = body.get("external_userid") or ""
        current = self.contact(ext)
        if current is None:
            raise ApiError(40096, f"unknown external_userid {ext!r}")
        if body.get("external_contact"):
            self.contacts[ext] = {**current, **body["external_contact"], "external_userid": ext}
        if body.get("follow_info"):
            userid = self._known_staff(body.get("userid"))
            items = self.relations[userid]
            match = [i for i in items if self.ext_of(i) == ext]
            if not match:
                raise ApiError(84061, f"{userid} does not follow {ext}")
            info = {**self.follow_info(userid, match[0]), **body["follow_info"]}
            self.follows[(userid, ext)] = info
        return {"external_userid": ext}

    def add_group(self, body: JsonDict) -> JsonDict:
        """A new customer group: `owner`, optional `chat_id`, `name`, `members` (external_userids)."""
        owner = self._known_staff(body.get("owner"))
        self.changes += 1
        chat_id = body.get("chat_id") or f"wrAdd{self.changes:010d}"
        members = [_member(owner, 1, BASE_TIME)]
        members += [_member(ext, 2, BASE_TIME) for ext in body.get("members") or []]
        self.groups[chat_id] = {"chat_id": chat_id, "name": body.get("name") or chat_id,
                                "owner": owner, "create_time": BASE_TIME, "status": 0,
                                "notice": "", "version": 1, "members": members}  # fmt: skip
        return {"chat_id": chat_id}

    def change_group(self, body: JsonDict) -> JsonDict:
        """`add_member` / `remove_member` (external_userids or userids), `name`, `owner`, `status`
        (0..3), or `dismiss: true` on the group `chat_id`."""
        group = self._group(body.get("chat_id"))
        present = {m["userid"] for m in group["members"]}
        for who in body.get("add_member") or []:
            if who not in present:
                kind = 1 if who in self.relations else 2
                group["members"].append(_member(who, kind, BASE_TIME + 86400))
        gone = set(body.get("remove_member") or [])
        group["members"] = [m for m in group["members"] if m["userid"] not in gone]
        for key in ("name", "owner", "status"):
            if key in body:
                group[key] = body[key]
        if body.get("dismiss"):
            group["status"] = "dismissed"
        group["version"] += 1
        return {"chat_id": group["chat_id"], "member_version": str(group["version"])}

    def add_tag(self, body: JsonDict) -> JsonDict:
        """A corp tag `name` in group `group_name` (created when new); answers its id."""
        self.changes += 1
        name, group_name = body.get("name") or "", body.get("group_name") or ""
        if not name or not group_name:
            raise ApiError(40058, "add_tag needs name and group_name")
        group = next((g for g in self.tag_groups if g["group_name"] == group_name), None)
        if group is None:
            group = {"group_id": f"etgrpAdd{self.changes}", "group_name": group_name,
                     "create_time": BASE_TIME, "order": len(self.tag_groups), "tag": []}  # fmt: skip
            self.tag_groups.append(group)
        tag = {"id": f"ettagAdd{self.changes}", "name": name, "create_time": BASE_TIME,
               "order": len(group["tag"])}  # fmt: skip
        group["tag"].append(tag)
        return {"tag_id": tag["id"], "group_id": group["group_id"]}

    # -- helpers ------------------------------------------------------------

    def _known_staff(self, userid: object) -> str:
        if not isinstance(userid, str) or userid not in self.relations:
            raise ApiError(60111, f"userid not found: {userid!r}")
        return userid

    def _group(self, chat_id: object) -> JsonDict:
        group = self.groups.get(chat_id) if isinstance(chat_id, str) else None
        if group is None or group["status"] == "dismissed":
            raise ApiError(40050, f"unknown chat_id {chat_id!r}")
        return group

    def _first_follower(self, k: int) -> str:
        return self.staff[k % len(self.staff)]


def _generated_contact(ext: str, k: int) -> JsonDict:
    """The `external_contact` of generated contact `k` (whose id is `ext`)."""
    return {
        "external_userid": ext,
        "name": f"客户{k}",
        "type": 1,
        "avatar": f"http://wx.qlogo.cn/emu/{k}/0",
        "gender": k % 3,
        "unionid": f"ozEmu{k:010d}",
    }


def _generated_follow(userid: str, k: int, tags: list[str], first: bool) -> JsonDict:
    """The `follow_info` of `userid`'s relation with generated contact `k`; `first` when they
    are its first follower (who added it first; a second one 7 s later)."""
    return {
        "userid": userid,
        "remark": f"客户{k}" if k % 4 else "",
        "description": "",
        "createtime": BASE_TIME + k * 30 + (0 if first else 7),
        "tag_id": [tags[k % len(tags)]] if tags and k % 3 == 0 else [],
        "remark_mobiles": [],
        "add_way": ADD_WAYS[k % len(ADD_WAYS)],
        "state": f"store-{k % 7:02d}" if k % 5 == 0 else "",
        "oper_userid": userid,
    }


def _member(userid: str, kind: int, joined: int) -> JsonDict:
    return {"userid": userid, "type": kind, "join_time": joined, "join_scene": 1}


def _generated(ext: str, size: int) -> int | None:
    """The index of a generated contact id, or None."""
    if not ext.startswith("wmEmu") or len(ext) != 15 or not ext[5:].isdigit():
        return None
    k = int(ext[5:])
    return k if k < size else None
