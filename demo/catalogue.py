"""The demo product catalogue: Chinese names, units and list prices per category."""

from __future__ import annotations

from dataclasses import dataclass

# One line per product: name | unit | list price in yuan. Keys are models.vocab.CATEGORIES.
_CATALOGUE: dict[str, str] = {
    "fresh": """
        鸡蛋|斤|5.99
        散养土鸡蛋(30枚)|盒|39.9
        精品五花肉|斤|18.8
        冷鲜鸡腿|斤|12.9
        澳洲肥牛卷|盒|39.9
        挪威三文鱼刺身|盒|59.9
        鲜活基围虾|斤|49.9
        阳澄湖大闸蟹|只|39.9
        智利车厘子|斤|69.9
        海南香蕉|斤|3.99
        烟台红富士苹果|斤|6.99
        赣南脐橙|斤|5.99
        麒麟西瓜|个|29.9
        阳光玫瑰葡萄|斤|19.9
        番茄|斤|4.59
        黄瓜|斤|3.29
        土豆|斤|2.49
        上海青|斤|3.99
        有机西兰花|个|6.9
        五常大米(5kg)|袋|69.9
        东北大米(5kg)|袋|39.9
        内蒙古羊排|斤|49.9
        鲜牛奶(950ml)|瓶|12.9
        老酸奶|盒|15.9
        内酯豆腐|盒|3.5
        速冻三鲜水饺|袋|22.9
        原切西冷牛排|盒|79.9
        舟山带鱼|斤|29.9
    """,
    "baby": """
        飞鹤星飞帆奶粉3段|罐|268
        爱他美婴儿配方奶粉2段|罐|298
        美赞臣蓝臻奶粉1段|罐|358
        帮宝适一级帮纸尿裤L码|包|129
        花王妙而舒纸尿裤M码|包|109
        好奇心钻装拉拉裤XL码|包|139
        婴儿手口湿巾(80抽×6包)|提|39.9
        婴儿洗衣液|瓶|39.9
        儿童牙膏|支|19.9
        宝宝高铁米粉|罐|69.9
        婴儿辅食果泥|盒|29.9
        PPSU宽口奶瓶|个|129
        安抚奶嘴|个|49
        婴儿润肤乳|瓶|59
        儿童保温杯|个|89
        轻便婴儿推车|台|899
        儿童安全座椅|台|1299
        宝宝爬行垫|件|159
        孕妇叶酸片|盒|49
        防溢乳垫|盒|39.9
        纯棉婴儿连体衣|件|79
        儿童绘本套装|套|99
        益智积木玩具|盒|129
        宝宝沐浴露|瓶|45
        婴儿棉柔巾|包|19.9
    """,
    "snacks": """
        进口零食大礼包|箱|99
        乐事薯片|袋|8.9
        三只松鼠每日坚果|盒|129
        良品铺子猪肉脯|袋|29.9
        德芙丝滑牛奶巧克力|盒|39.9
        费列罗榛果威化巧克力|盒|89
        奥利奥夹心饼干|盒|12.9
        韩国进口海苔|袋|19.9
        日本进口抹茶饼干|盒|39.9
        泰国芒果干|袋|25.9
        卫龙辣条|袋|9.9
        旺旺雪饼|袋|15.9
        喜之郎果冻|袋|19.9
        洽洽香瓜子|袋|12.9
        百草味夏威夷果|袋|35.9
        好丽友巧克力派|盒|18.9
        马来西亚白咖啡|袋|32.9
        徐福记酥心糖|袋|29.9
        蛋黄酥|盒|39.9
        内蒙古风干牛肉干|袋|49.9
        自热小火锅|盒|29.9
        柳州螺蛳粉|袋|13.9
        即食燕麦片|罐|35.9
        冻干草莓|袋|29.9
        丹麦进口曲奇礼盒|盒|68
    """,
    "drinks": """
        青岛啤酒经典(500ml×12)|箱|59
        雪花勇闯天涯(500ml×12)|箱|49
        百威啤酒(500ml×12)|箱|79
        哈尔滨啤酒(330ml×24)|箱|45
        精酿IPA啤酒|瓶|19.9
        农夫山泉(550ml×24)|箱|39.9
        怡宝纯净水(555ml×24)|箱|29.9
        可口可乐(330ml×24)|箱|59.9
        元气森林气泡水(480ml×15)|箱|69
        东方树叶乌龙茶(500ml×15)|箱|89
        维他柠檬茶(250ml×24)|箱|49.9
        椰树椰汁(245ml×24)|箱|69
        伊利纯牛奶(250ml×24)|箱|65
        特仑苏纯牛奶(250ml×12)|箱|69.9
        五粮液普五(500ml)|瓶|1099
        汾酒青花20(500ml)|瓶|459
        泸州老窖特曲(500ml)|瓶|299
        长城干红葡萄酒|瓶|89
        奔富Bin389红葡萄酒|瓶|599
        法国波尔多红葡萄酒|瓶|168
        梅见青梅酒|瓶|88
        三得利乌龙茶(500ml×15)|箱|79
        星巴克即饮咖啡|瓶|15.9
        红牛维生素饮料(250ml×24)|箱|129
        燕京U8啤酒(500ml×12)|箱|55
    """,
    "appliances": """
        空气炸锅|台|399
        智能电饭煲|台|499
        破壁料理机|台|699
        电热水壶|台|129
        扫地机器人|台|1999
        无线吸尘器|台|1299
        声波电动牙刷|支|299
        高速吹风机|台|399
        静音加湿器|台|259
        暖风机|台|359
        电压力锅|台|459
        微波炉|台|599
        台式洗碗机|台|3299
        厨下净水器|台|1999
        空气净化器|台|1599
        电饼铛|台|269
        便携榨汁杯|个|139
        蒸烤一体机|台|2999
        手持挂烫机|台|349
        陶瓷电炖锅|台|229
        智能马桶盖|台|1499
        除螨仪|台|399
        多功能养生壶|台|199
        意式咖啡机|台|1299
        电动剃须刀|个|399
    """,
    "daily": """
        蓝月亮深层洁净洗衣液|瓶|49.9
        超能天然皂粉洗衣液|瓶|39.9
        立白洗洁精|瓶|12.9
        维达抽纸(24包)|箱|49.9
        清风卷纸(27卷)|提|39.9
        舒肤佳沐浴露|瓶|39.9
        海飞丝去屑洗发水|瓶|59.9
        高露洁牙膏|支|15.9
        云南白药牙膏|支|29.9
        佳洁士软毛牙刷|支|19.9
        威露士衣物消毒液|瓶|35.9
        加厚垃圾袋|卷|9.9
        保鲜膜|盒|12.9
        厨房湿巾|包|15.9
        84消毒液|瓶|9.9
        金纺衣物护理剂|瓶|29.9
        洗衣凝珠|盒|59.9
        护手霜|支|25
        泡沫洗手液|瓶|19.9
        平板拖把|件|69
        纯棉毛巾|件|19.9
        大号收纳箱|个|49
        一次性手套|盒|9.9
        驱蚊液|瓶|29.9
        南孚电池|盒|19.9
        晾衣架(10只)|件|29.9
    """,
}

SKU_PREFIX = {
    "fresh": "FR",
    "baby": "BB",
    "snacks": "SN",
    "drinks": "DR",
    "appliances": "AP",
    "daily": "DL",
}


@dataclass(frozen=True)
class ProductSpec:
    """One product row: the id is its position in the catalogue, starting at 1."""

    id: int
    sku: str
    name: str
    category: str
    unit: str
    list_price_fen: int


def products() -> list[ProductSpec]:
    """The whole catalogue in a fixed order (ids 1..n)."""
    result: list[ProductSpec] = []
    for category, block in _CATALOGUE.items():
        lines = [line.strip() for line in block.strip().splitlines()]
        for number, line in enumerate(lines, start=1):
            name, unit, yuan = line.split("|")
            sku = f"{SKU_PREFIX[category]}{number:04d}"
            fen = round(float(yuan) * 100)
            result.append(ProductSpec(len(result) + 1, sku, name, category, unit, fen))
    return result


# Product photos shipped in sop/media/ (a few fresh products; the rest have none), by SKU.
PICTURES = {
    "FR0001": "media/eggs.jpg",
    "FR0002": "media/eggs.jpg",
    "FR0003": "media/pork.jpg",
    "FR0009": "media/cherries.jpg",
    "FR0010": "media/bananas.jpg",
    "FR0019": "media/broccoli.jpg",
}


def product_rows(catalogue: list[ProductSpec]) -> list[tuple[object, ...]]:
    """Rows for the `product` table."""
    return [
        (p.id, p.sku, p.name, p.category, p.unit, p.list_price_fen, PICTURES.get(p.sku))
        for p in catalogue
    ]


PRODUCT_COLUMNS = ("id", "sku", "name", "category", "unit", "list_price_fen", "picture")
