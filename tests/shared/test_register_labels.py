"""Each register's label: Chinese in zh, and no Han character in en (the near misses and the
dashboard show it in the reader's language)."""

from __future__ import annotations

import re

from shared.enums import RegisterKind
from shared.schemas.registers import REGISTER_LABELS

HAN = re.compile(r"[\u4e00-\u9fff]")


def test_every_register_has_a_zh_and_an_en_label() -> None:
    assert set(REGISTER_LABELS) == set(RegisterKind)
    for kind, (zh, en) in REGISTER_LABELS.items():
        assert HAN.search(zh), kind
        assert not HAN.search(en), kind
