"""``PODREPRO_AUDIT_LOG`` (a file path): one JSON line per external command podrepro runs, with
its argv, the effective uid and how it ran. The privilege-audit test reads it. Dependency-free so
the run-plan hot path can record its exec too."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing's would cost the run-plan hot path ~3 ms
if TYPE_CHECKING:
    from collections.abc import Sequence


def record(argv: Sequence[str], how: str) -> None:
    path = os.environ.get("PODREPRO_AUDIT_LOG")
    if path:
        import json

        rec = {"argv": list(argv), "euid": os.geteuid(), "how": how, "pid": os.getpid()}
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")
