"""Write the synchronous client (finmatch_client/_sync) from the asynchronous one (_async).

The async modules are the source: every method is written once. This turns each into its
sync twin by rewriting tokens (``async def`` -> ``def``, ``await x`` -> ``x``,
``AsyncFirms`` -> ``Firms``, ``asyncio.sleep`` -> ``time.sleep`` ...) and formats the result
with ruff. ``python tools/unasync.py`` rewrites _sync; ``--check`` fails when _sync is not
what _async makes (tests/client/test_unasync.py runs it in CI).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "finmatch_client"
SOURCE, TARGET = PACKAGE / "_async", PACKAGE / "_sync"
HEADER = (
    "# Generated from finmatch_client/_async/{name} by tools/unasync.py: edit that, not this.\n"
)

# Order matters: the specific spellings before the general ones.
RULES: tuple[tuple[str, str], ...] = (
    (r"\bimport asyncio\b", "import time"),
    (r"\basyncio\.sleep\b", "time.sleep"),
    (r"\basync def\b", "def"),
    (r"\basync for\b", "for"),
    (r"\basync with\b", "with"),
    (r"\bawait ", ""),
    (r"\b__aenter__\b", "__enter__"),
    (r"\b__aexit__\b", "__exit__"),
    (r"\b__aiter__\b", "__iter__"),
    (r"\b__anext__\b", "__next__"),
    (r"\baclose\b", "close"),
    (r"\baread\b", "read"),
    (r"\bStopAsyncIteration\b", "StopIteration"),
    (r"\bfinmatch_client\._async\b", "finmatch_client._sync"),
    (r"\bhttpx\.AsyncClient\b", "httpx.Client"),
    (r"\bAsync([A-Z]\w*)", r"\1"),
    (r"\basynchronous\b", "synchronous"),
)


def _ruff() -> str:
    beside = Path(sys.executable).with_name("ruff")
    found = str(beside) if beside.exists() else shutil.which("ruff")
    if found is None:
        raise SystemExit("ruff is needed to format the generated modules (pip install ruff)")
    return found


def _format(text: str, path: Path) -> str:
    ruff = _ruff()
    for args in (
        ["check", "--fix-only", "--select", "I,F401", "--quiet"],
        ["format", "--quiet"],
    ):
        done = subprocess.run(
            [ruff, *args, "--stdin-filename", str(path), "-"],
            input=text,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"ruff {args[0]} failed on {path.name}:\n{done.stderr}")
        text = done.stdout
    return text


def render(source: Path) -> str:
    text = source.read_text()
    for pattern, replacement in RULES:
        text = re.sub(pattern, replacement, text)
    return _format(HEADER.format(name=source.name) + text, TARGET / source.name)


def expected() -> dict[str, str]:
    return {path.name: render(path) for path in sorted(SOURCE.glob("*.py"))}


def main(argv: list[str]) -> int:
    modules = expected()
    if "--check" in argv:
        stale = [
            name
            for name, text in modules.items()
            if not (TARGET / name).exists() or (TARGET / name).read_text() != text
        ]
        extra = sorted({p.name for p in TARGET.glob("*.py")} - set(modules))
        if stale or extra:
            print(f"_sync differs from what _async makes: {stale + extra}; run tools/unasync.py")
            return 1
        return 0
    TARGET.mkdir(exist_ok=True)
    for name, text in modules.items():
        (TARGET / name).write_text(text)
    for path in TARGET.glob("*.py"):
        if path.name not in modules:
            path.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
