"""Chinese and English names for the keys statistics group by (towns, sections, sizes, ...)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from shared.vocab.categories import CATEGORIES, ProductCategory
from shared.vocab.industries import SECTIONS_BY_LETTER
from shared.vocab.size_class import SizeClass
from shared.vocab.towns import TOWNS_BY_CODE

SIZE_CLASS_NAMES: Mapping[SizeClass, tuple[str, str]] = MappingProxyType(
    {
        SizeClass.LARGE: ("大型", "Large"),
        SizeClass.MEDIUM: ("中型", "Medium"),
        SizeClass.SMALL: ("小型", "Small"),
        SizeClass.MICRO: ("微型", "Micro"),
    }
)


def town_label(code: str) -> tuple[str, str]:
    town = TOWNS_BY_CODE.get(code)
    return (code, code) if town is None else (town.name_zh, town.pinyin)


def section_label(letter: str) -> tuple[str, str]:
    section = SECTIONS_BY_LETTER.get(letter)
    return (letter, letter) if section is None else (section.name_zh, section.name_en)


def category_label(code: str) -> tuple[str, str]:
    try:
        info = CATEGORIES[ProductCategory(code)]
    except ValueError:
        return code, code
    return info.name_zh, info.name_en


def size_class_label(code: str) -> tuple[str, str]:
    try:
        return SIZE_CLASS_NAMES[SizeClass(code)]
    except ValueError:
        return code, code
