"""The WeCom directory endpoints the emulator serves (follow users, contacts, groups, corp tags)
and its `/emulator/directory/...` admin calls, over a `DirectoryWorld`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from channels.emulator.config import EXTERNALCONTACT, ApiError, JsonDict
from channels.emulator.directory_world import DirectoryWorld
from channels.emulator.wire import paged

MAX_BATCH_USERS = 100  # batch/get_by_user: userid_list
MAX_BATCH_LIMIT = 100  # batch/get_by_user: limit
DEFAULT_BATCH_LIMIT = 50
MAX_GROUP_LIMIT = 1000  # groupchat/list: limit
FOLLOW_USER_PAGE = 500  # externalcontact/get pages follow_user beyond this many
ADMIN = "/emulator/directory"


class DirectoryApi:
    """Mixin of `WeComEmulator`: the directory it serves (`emu.directory`) and its endpoints."""

    _lock: threading.RLock
    _directory: DirectoryWorld | None = None

    @property
    def directory(self) -> DirectoryWorld:
        """The directory served (empty until seeded)."""
        if self._directory is None:
            self._directory = DirectoryWorld()
        return self._directory

    def seed_directory(self, world: DirectoryWorld) -> DirectoryWorld:
        """Serve `world` from now on (kept in memory only)."""
        with self._lock:
            self._directory = world
            return world

    # -- WeCom endpoints (called under the lock) ----------------------------

    def _get_follow_user_list(self, _: dict[str, str], __: JsonDict) -> JsonDict:
        return {"follow_user": list(self.directory.staff)}

    def _contact_list(self, query: dict[str, str], _: JsonDict) -> JsonDict:
        world = self.directory
        userid = world._known_staff(query.get("userid"))
        items = world.relations[userid]
        if not items:
            raise ApiError(84061, f"{userid} has no external contacts")
        return {"external_userid": [world.ext_of(i) for i in items]}

    def _contact_get(self, query: dict[str, str], _: JsonDict) -> JsonDict:
        world = self.directory
        ext = query.get("external_userid") or ""
        if not ext:
            raise ApiError(41035)
        contact = world.contact(ext)
        if contact is None:
            raise ApiError(40096)
        followers = world.followers(ext)
        if not followers:
            raise ApiError(84061)
        offset = _offset(query.get("cursor") or "")
        page = followers[offset : offset + FOLLOW_USER_PAGE]
        end = offset + len(page)
        return {
            "external_contact": contact,
            "follow_user": [world.follow_info(u, ext) for u in page],
            "next_cursor": f"f{end}" if end < len(followers) else "",
        }

    def _batch_get_by_user(self, _: dict[str, str], body: JsonDict) -> JsonDict:
        world = self.directory
        users = body.get("userid_list")
        if users is None and body.get("userid"):  # the older single-user form
            users = [body["userid"]]
        if not isinstance(users, list) or not users:
            raise ApiError(40058, "userid_list must list 1..100 userids")
        if len(users) > MAX_BATCH_USERS:
            raise ApiError(40058, f"userid_list has {len(users)} userids, at most 100")
        limit = body.get("limit") or DEFAULT_BATCH_LIMIT
        if not isinstance(limit, int) or not 0 < limit <= MAX_BATCH_LIMIT:
            raise ApiError(40058, f"limit must be 1..{MAX_BATCH_LIMIT}")
        lists = [world.relations[world._known_staff(u)] for u in users]
        start = _offset(body.get("cursor") or "")
        rows: list[JsonDict] = []
        skip = start
        for userid, items in zip(users, lists, strict=True):
            if skip >= len(items):
                skip -= len(items)
                continue
            rows += world.page_items(userid, items[skip : skip + limit - len(rows)])
            skip = 0
            if len(rows) == limit:
                break
        end = start + len(rows)
        total = sum(len(items) for items in lists)
        return {"external_contact_list": rows, "next_cursor": f"f{end}" if end < total else ""}

    def _groupchat_list(self, _: dict[str, str], body: JsonDict) -> JsonDict:
        status = body.get("status_filter") or 0
        if status not in (0, 1, 2, 3):
            raise ApiError(40058, "status_filter must be 0..3")
        owners = (body.get("owner_filter") or {}).get("userid_list") or []
        if len(owners) > MAX_BATCH_USERS:
            raise ApiError(40058, "owner_filter.userid_list has at most 100 userids")
        if "limit" not in body:
            raise ApiError(40058, f"limit is required (1..{MAX_GROUP_LIMIT})")
        rows = [
            {"chat_id": g["chat_id"], "status": g["status"]}
            for g in self.directory.groups.values()
            if g["status"] != "dismissed"
            and (status == 0 or g["status"] == status)
            and (not owners or g["owner"] in owners)
        ]
        return paged(rows, body, "group_chat_list", MAX_GROUP_LIMIT)

    def _groupchat_get(self, _: dict[str, str], body: JsonDict) -> JsonDict:
        world = self.directory
        group = world._group(body.get("chat_id"))
        need_name = bool(body.get("need_name"))
        members = []
        for m in group["members"]:
            member = dict(m)
            if m["type"] == 1:
                member["invitor"] = {"userid": group["owner"]}
            if need_name:
                contact = world.contact(m["userid"]) if m["type"] == 2 else None
                member["name"] = contact["name"] if contact else m["userid"]
            members.append(member)
        return {
            "group_chat": {
                "chat_id": group["chat_id"],
                "name": group["name"],
                "owner": group["owner"],
                "create_time": group["create_time"],
                "notice": group["notice"],
                "member_list": members,
                "admin_list": [],
                "member_version": str(group["version"]),
            }
        }

    def _get_corp_tag_list(self, _: dict[str, str], body: JsonDict) -> JsonDict:
        tag_ids = set(body.get("tag_id") or [])
        group_ids = set(body.get("group_id") or [])
        found = []
        for group in self.directory.tag_groups:
            if group_ids and group["group_id"] not in group_ids:
                continue
            tags = [t for t in group["tag"] if not tag_ids or t["id"] in tag_ids]
            if tags or not tag_ids:
                found.append({**group, "tag": [dict(t) for t in tags]})
        return {"tag_group": found}

    # -- admin --------------------------------------------------------------

    def directory_admin(self, method: str, path: str, body: JsonDict) -> JsonDict:
        """`GET /emulator/directory` (counts) and `POST /emulator/directory/<change>`."""
        with self._lock:
            if (method, path) == ("GET", ADMIN):
                return self.directory.counts()
            change = path.removeprefix(ADMIN + "/")
            if method == "POST" and change == "seed":
                knobs = ("staff", "contacts", "groups_per_staff", "members_per_group")
                world = DirectoryWorld.generate(**{k: int(body[k]) for k in knobs if k in body})
                return self.seed_directory(world).counts()
            action = ADMIN_CHANGES.get(change)
            if method != "POST" or action is None:
                raise KeyError(f"no such directory call: {method} {path}")
            return action(self.directory, body)


def _offset(cursor: str) -> int:
    """The position a cursor this emulator gave points at; anything else is 40058."""
    if not cursor:
        return 0
    if not cursor.startswith("f") or not cursor[1:].isdigit():
        raise ApiError(40058, "invalid cursor")
    return int(cursor[1:])


ADMIN_CHANGES: dict[str, Callable[[DirectoryWorld, JsonDict], JsonDict]] = {
    "add_contact": DirectoryWorld.add_contact,
    "remove_contact": DirectoryWorld.remove_contact,
    "edit_contact": DirectoryWorld.edit_contact,
    "add_group": DirectoryWorld.add_group,
    "change_group": DirectoryWorld.change_group,
    "add_tag": DirectoryWorld.add_tag,
}

Route = Callable[[Any, dict[str, str], JsonDict], JsonDict]
DIRECTORY_ROUTES: dict[tuple[str, str], Route] = {
    ("GET", EXTERNALCONTACT + "get_follow_user_list"): DirectoryApi._get_follow_user_list,
    ("GET", EXTERNALCONTACT + "list"): DirectoryApi._contact_list,
    ("GET", EXTERNALCONTACT + "get"): DirectoryApi._contact_get,
    ("POST", EXTERNALCONTACT + "batch/get_by_user"): DirectoryApi._batch_get_by_user,
    ("POST", EXTERNALCONTACT + "groupchat/list"): DirectoryApi._groupchat_list,
    ("POST", EXTERNALCONTACT + "groupchat/get"): DirectoryApi._groupchat_get,
    ("POST", EXTERNALCONTACT + "get_corp_tag_list"): DirectoryApi._get_corp_tag_list,
}
