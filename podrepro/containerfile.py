"""What a project's own Containerfile may not do.

Its directory is the build context, and its recipe hash covers the Containerfile's bytes, not
the context's files: ``COPY``/``ADD`` would make two projects with the same Containerfile but
different files get one tag (and one could poison the other's image). A layer build also must not
reach past the build: ``RUN --network=host``, ``RUN --mount`` (other images, host paths, secrets)
and ``COPY --from`` (another local image) are refused. Packages and commands go in ``RUN`` steps;
a project that needs its files builds them in ``podrepro build``, where the tree is mounted.
"""

from __future__ import annotations

import re

_FORBIDDEN = {
    "COPY": "COPY takes files from the build context, which the image's tag does not cover",
    "ADD": "ADD takes files from the build context or a URL, which the image's tag does not cover",
}
_RUN_FLAG = re.compile(r"^RUN\s+(?:--\S+\s+)*?(--(network|mount|security)\S*)", re.IGNORECASE)


def instructions(text: str) -> list[str]:
    """The Containerfile's instructions, continuation lines joined, comments dropped."""
    out: list[str] = []
    cur = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not cur and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        cur += line
        out.append(cur.strip())
        cur = ""
    if cur.strip():
        out.append(cur.strip())
    return out


def problem(text: str) -> str | None:
    """Why a project Containerfile is refused, or None."""
    for ins in instructions(text):
        word = ins.split(None, 1)[0].upper()
        if word in _FORBIDDEN:
            return f"'{ins[:60]}': {_FORBIDDEN[word]}"
        m = _RUN_FLAG.match(ins)
        if m:
            return f"'{ins[:60]}': RUN {m.group(1).split('=')[0]} reaches past the build step"
    return None
