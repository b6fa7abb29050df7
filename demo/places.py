"""Cities, stores and staff (导购 advisors with WeCom userids) of the demo chain."""

from __future__ import annotations

import random
from dataclasses import dataclass

# City, WeCom userid code, share of customers, and the stores (mall or district) in it.
CITIES: tuple[tuple[str, str, int, tuple[str, ...]], ...] = (
    ("北京", "bj", 18, ("朝阳大悦城", "西单大悦城", "望京凯德MALL", "五道口购物中心")),
    ("上海", "sh", 20, ("徐家汇港汇恒隆", "五角场合生汇", "静安大悦城", "陆家嘴正大广场")),
    ("广州", "gz", 11, ("天河城", "正佳广场", "番禺万达广场")),
    ("深圳", "sz", 12, ("福田COCOPark", "南山海岸城", "宝安壹方城")),
    ("杭州", "hz", 10, ("西湖银泰", "滨江龙湖天街", "城西银泰城")),
    ("成都", "cd", 11, ("春熙路IFS", "高新银泰中心", "金牛万达广场")),
    ("武汉", "wh", 9, ("光谷世界城", "汉街万达广场", "武商梦时代")),
    ("南京", "nj", 9, ("新街口德基广场", "河西万达广场", "江宁金鹰")),
)

# Staff names with their pinyin, for userids like `zhangwei.bj01`.
_SURNAMES = (
    "张zhang 王wang 李li 刘liu 陈chen 杨yang 黄huang 赵zhao 吴wu 周zhou 徐xu 孙sun 马ma "
    "朱zhu 胡hu 郭guo 何he 林lin 罗luo 高gao 郑zheng 梁liang 谢xie 宋song 唐tang 韩han "
    "冯feng 邓deng 曹cao 彭peng 曾zeng 萧xiao 田tian 董dong 潘pan 袁yuan 蒋jiang 蔡cai"
)
_GIVEN = (
    "伟wei 芳fang 娜na 敏min 静jing 丽li 强qiang 磊lei 军jun 洋yang 勇yong 艳yan 杰jie "
    "娟juan 涛tao 明ming 超chao 秀英xiuying 霞xia 平ping 刚gang 桂英guiying 晓燕xiaoyan "
    "婷ting 雪xue 浩hao 宇yu 欣怡xinyi 子涵zihan 思远siyuan 佳jia 琳lin 嘉怡jiayi 雨桐yutong "
    "晨chen 鑫xin 倩qian 梦婷mengting 志强zhiqiang 建华jianhua 丹dan 慧hui 颖ying 博文bowen"
)


def _split(words: str) -> list[tuple[str, str]]:
    pairs = []
    for word in words.split():
        cut = next(i for i, ch in enumerate(word) if ch.isascii())
        pairs.append((word[:cut], word[cut:]))
    return pairs


@dataclass(frozen=True)
class StoreSpec:
    id: int
    code: str
    name: str
    city: str


@dataclass(frozen=True)
class StaffSpec:
    id: int
    userid: str
    name: str
    store_id: int | None
    city: str | None
    role: str  # advisor | manager | ops


def stores() -> list[StoreSpec]:
    """Every store, ids 1..n, named like 北京朝阳大悦城店."""
    result: list[StoreSpec] = []
    for city, code, _share, malls in CITIES:
        for number, mall in enumerate(malls, start=1):
            result.append(
                StoreSpec(len(result) + 1, f"{code}{number:02d}", f"{city}{mall}店", city)
            )
    return result


def staff(store_list: list[StoreSpec], rng: random.Random) -> list[StaffSpec]:
    """Two HQ operators, then per store one manager (店长) and 4-6 advisors (导购)."""
    surnames, given = _split(_SURNAMES), _split(_GIVEN)
    result: list[StaffSpec] = []
    per_city: dict[str, int] = {}

    def add(store: StoreSpec | None, role: str) -> None:
        (family, family_py), (first, first_py) = rng.choice(surnames), rng.choice(given)
        scope = store.city if store else "总部"
        code = _city_code(store.city) if store else "hq"
        per_city[scope] = per_city.get(scope, 0) + 1
        userid = f"{family_py}{first_py}.{code}{per_city[scope]:02d}"
        store_id, city = (store.id, store.city) if store else (None, None)
        result.append(StaffSpec(len(result) + 1, userid, family + first, store_id, city, role))

    for _ in range(2):
        add(None, "ops")
    for store in store_list:
        add(store, "manager")
        for _ in range(rng.randint(4, 6)):
            add(store, "advisor")
    return result


def _city_code(city: str) -> str:
    return next(code for name, code, _share, _malls in CITIES if name == city)


STORE_COLUMNS = ("id", "code", "name", "city")
STAFF_COLUMNS = ("id", "userid", "name", "store_id", "role")


def store_rows(store_list: list[StoreSpec]) -> list[tuple[object, ...]]:
    """Rows for the `store` table."""
    return [(s.id, s.code, s.name, s.city) for s in store_list]


def staff_rows(staff_list: list[StaffSpec]) -> list[tuple[object, ...]]:
    """Rows for the `staff` table."""
    return [(s.id, s.userid, s.name, s.store_id, s.role) for s in staff_list]
