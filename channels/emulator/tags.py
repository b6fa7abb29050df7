"""Corp tags on contacts: `externalcontact/mark_tag` and `externalcontact/add_corp_tag` over the
emulator's directory, each mark_tag call counted per (userid, external_userid) for tests."""

from __future__ import annotations

from collections import Counter
from typing import Any

from channels.emulator.config import EXTERNALCONTACT, ApiError, JsonDict
from channels.emulator.directory_world import BASE_TIME, DirectoryWorld

MAX_TAG_NAME = 30  # WeCom: a corp tag or tag group name is at most 30 characters


class TagBook:
    """What mark_tag was asked: every accepted call in order, and calls per (userid, external_userid)."""

    def __init__(self) -> None:
        self.marks: list[JsonDict] = []
        self.calls: Counter[tuple[str, str]] = Counter()
        self.created = 0


def tag_book(emulator: Any) -> TagBook:
    """The emulator's tag book, made on first use."""
    found = getattr(emulator, "_tag_book", None)
    if found is None:
        found = emulator._tag_book = TagBook()
    return found


def _ids(body: JsonDict, key: str) -> list[str]:
    value = body.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ApiError(40058, f"{key} must be a list of tag ids")
    return value


def mark_tag(emulator: Any, _: dict[str, str], body: JsonDict) -> JsonDict:
    """Add and remove corp tags on one staff member's relation with one contact (40068 unknown tag,
    84061 no relation); the relation's `tag_id` changes, so a later sync reads it."""
    world: DirectoryWorld = emulator.directory
    userid = world._known_staff(body.get("userid"))
    ext = body.get("external_userid") or ""
    if not ext:
        raise ApiError(41035)
    add, remove = _ids(body, "add_tag"), _ids(body, "remove_tag")
    if not add and not remove:
        raise ApiError(40058, "add_tag and remove_tag cannot both be empty")
    if world.contact(ext) is None:
        raise ApiError(40096)
    items = [i for i in world.relations.get(userid, ()) if world.ext_of(i) == ext]
    if not items:
        raise ApiError(84061)
    known = set(world.tag_ids())
    unknown = [t for t in add + remove if t not in known]
    if unknown:
        raise ApiError(40068, f"invalid tagid: {unknown[0]}")
    info = world.follow_info(userid, items[0])
    tags = [t for t in info.get("tag_id") or [] if t not in remove]
    tags += [t for t in add if t not in tags]
    world.follows[(userid, ext)] = {**info, "tag_id": tags}
    book = tag_book(emulator)
    book.calls[(userid, ext)] += 1
    book.marks.append({"userid": userid, "external_userid": ext, "add_tag": add,
                       "remove_tag": remove})  # fmt: skip
    return {}


def add_corp_tag(emulator: Any, _: dict[str, str], body: JsonDict) -> JsonDict:
    """New tags in the group `group_id`, or in the group named `group_name` (created when new);
    40071 when a tag of that name is already in the group."""
    world: DirectoryWorld = emulator.directory
    book = tag_book(emulator)
    names = [t.get("name") if isinstance(t, dict) else None for t in body.get("tag") or []]
    if not names or not all(isinstance(n, str) and 0 < len(n) <= MAX_TAG_NAME for n in names):
        raise ApiError(40058, f"tag must list names of 1..{MAX_TAG_NAME} characters")
    if len(set(names)) < len(names):
        raise ApiError(40071, "a tag name is listed twice")
    group_id, group_name = body.get("group_id"), body.get("group_name") or ""
    if group_id:
        group = next((g for g in world.tag_groups if g["group_id"] == group_id), None)
        if group is None:
            raise ApiError(40068, f"invalid group_id: {group_id}")
    else:
        if not isinstance(group_name, str) or not 0 < len(group_name) <= MAX_TAG_NAME:
            raise ApiError(40058, "group_id or a group_name of 1..30 characters is required")
        group = next((g for g in world.tag_groups if g["group_name"] == group_name), None)
        if group is None:
            book.created += 1
            group = {"group_id": f"etgrpNew{book.created}", "group_name": group_name,
                     "create_time": BASE_TIME, "order": len(world.tag_groups), "tag": []}  # fmt: skip
            world.tag_groups.append(group)
    taken = {t["name"] for t in group["tag"]}
    if taken & set(names):
        raise ApiError(40071, f"tag name already exists: {sorted(taken & set(names))[0]}")
    created = []
    for name in names:
        book.created += 1
        tag = {"id": f"ettagNew{book.created}", "name": name, "create_time": BASE_TIME,
               "order": len(group["tag"])}  # fmt: skip
        group["tag"].append(tag)
        created.append(dict(tag))
    return {"tag_group": {**{k: v for k, v in group.items() if k != "tag"}, "tag": created}}


TAG_ROUTES = {
    ("POST", EXTERNALCONTACT + "mark_tag"): mark_tag,
    ("POST", EXTERNALCONTACT + "add_corp_tag"): add_corp_tag,
}
