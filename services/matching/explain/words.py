"""Numbers and names as a reason prints them, in Chinese or English."""

from __future__ import annotations

import math
from collections.abc import Sequence

from services.matching.explain.text import TEXT
from services.matching.tables import CATEGORIES as CATEGORY_ORDER
from services.matching.tables import ProductTable
from shared.enums import CreditRating
from shared.schemas.matching import Lang
from shared.vocab.categories import CATEGORIES
from shared.vocab.industries import SECTIONS_BY_LETTER
from shared.vocab.labels import SIZE_CLASS_NAMES
from shared.vocab.size_class import SizeClass
from shared.vocab.towns import TOWNS_BY_CODE

MAX_TOWNS_NAMED = 6  # a 松山湖-zone product lists 11 towns; past six a list stops being read
_RATINGS = list(CreditRating)  # best first, so rank r (AAA = 7) is _RATINGS[7 - r]


def zh_en(lang: Lang, zh: str, en: str) -> str:
    return zh if lang == "zh" else en


def fill(wording: tuple[str, str], lang: Lang, **values: object) -> str:
    """A (zh, en) format string pair filled in for ``lang``."""
    zh, en = wording
    return zh_en(lang, zh, en).format(**values)


def say(key: str, lang: Lang, **values: object) -> str:
    return fill(TEXT[key], lang, **values)


def _trim(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def _scaled(value: float, prefix: str, keep_decimal: bool) -> str:
    """prefix + K/M/B; one decimal below 100 of a unit, optionally without a trailing ".0"."""
    sign, v = ("-" if value < 0 else ""), abs(value)
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        scaled = v / size
        if round(scaled, 1) >= 1:
            if unit == "K" or round(scaled, 1) >= 100:
                return f"{sign}{prefix}{scaled:,.0f}{unit}"
            text = f"{scaled:.1f}"
            return f"{sign}{prefix}{text if keep_decimal else _trim(text)}{unit}"
    return f"{sign}{prefix}{v:,.0f}"


def format_yuan(value: float, lang: Lang) -> str:
    """Chinese "85万元", "2,000万元", "1.2亿元"; English "¥850K", "¥2.0M", "¥120M"."""
    if lang == "en":
        return _scaled(value, "¥", keep_decimal=True)
    sign, v = ("-" if value < 0 else ""), abs(value)
    if round(v / 1e8, 2) >= 1:
        return f"{sign}{_trim(f'{v / 1e8:,.2f}')}亿元"
    if v >= 1e4:
        wan = v / 1e4
        return f"{sign}{f'{wan:,.0f}' if wan >= 100 else _trim(f'{wan:.1f}')}万元"
    return f"{sign}{v:,.0f}元"


def format_usd(value: float, lang: Lang) -> str:
    """ "US$8.2M", "US$10M", "US$850K" in either language: firms report exports in dollars."""
    return _scaled(value, "US$", keep_decimal=False)


def num(value: float, lang: Lang = "zh") -> str:
    # Takes lang only to fit the other value printers; digits read the same in both.
    return _trim(f"{value:,.1f}")


def years_down(value: float) -> float:
    # Rounded down: a firm 2.96 years old has not "reached 3 years" and must not read as if so.
    return math.floor(value * 10 + 1e-9) / 10


def years_up(value: float) -> float:
    # Rounded up: a firm 5.04 years old is past a five-year limit and must read as past it.
    return math.ceil(value * 10 - 1e-9) / 10


def years_text(value: float, lang: Lang) -> str:
    # The unit is in the Chinese template; English needs it here to agree in number.
    return zh_en(lang, num(value), f"{num(value)} year{'' if value == 1 else 's'}")


def pct(bp: float) -> str:
    return f"{bp / 100:.2f}%"


def rating(rank: float) -> str | None:
    return None if rank <= 0 else _RATINGS[7 - int(rank)].value


def town(code: str, lang: Lang) -> str:
    found = TOWNS_BY_CODE[code]
    return zh_en(lang, found.name_zh, found.pinyin)


def section(letter: str, lang: Lang) -> str:
    found = SECTIONS_BY_LETTER[letter]
    return zh_en(lang, found.name_zh, found.name_en)


def size(size_class: str, lang: Lang) -> str:
    zh, _ = SIZE_CLASS_NAMES[SizeClass(size_class)]
    return zh_en(lang, zh, SizeClass(size_class).value)


def category(products: ProductTable, j: int, lang: Lang) -> str:
    info = CATEGORIES[CATEGORY_ORDER[int(products.category[j])]]
    return zh_en(lang, info.name_zh, info.name_en)


def join(names: Sequence[str], lang: Lang, zh_sep: str = "、", en_sep: str = ", ") -> str:
    if lang == "zh" or len(names) < 2:
        return zh_en(lang, zh_sep, en_sep).join(names)
    return f"{en_sep.join(names[:-1])} or {names[-1]}"


def towns(codes: Sequence[str], lang: Lang) -> str:
    names = [town(code, lang) for code in codes]
    if len(names) <= MAX_TOWNS_NAMED:
        return join(names, lang)
    shown = MAX_TOWNS_NAMED - 1
    head = zh_en(lang, "、", ", ").join(names[:shown])
    return zh_en(
        lang, f"{head}等 {len(names)} 个镇街", f"{head} and {len(names) - shown} other towns"
    )
