"""``PODREPRO_AUDIT_LOG`` (a file path): one JSON line per external command podrepro runs, with
its argv, the effective uid, how it ran ("run", "popen", "exec", "foreground", "exec-plan", or
"api" for a podman-py call, recorded as ``["podman-api", OPERATION, ARG]``) and whether it is the
container engine (podman or buildah, also through a ``PODREPRO_PODMAN`` wrapper). The privilege-audit test reads it. Dependency-free so
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

        prog = argv[0] if argv else ""
        # podman through a PODREPRO_PODMAN wrapper (any name) is still the engine
        engine = os.path.basename(prog) in ("podman", "buildah") or prog == os.environ.get("PODREPRO_PODMAN")
        rec = {"argv": list(argv), "euid": os.geteuid(), "how": how, "pid": os.getpid(), "engine": engine}
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")
