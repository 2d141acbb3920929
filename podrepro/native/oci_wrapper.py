# podrepro OCI-runtime wrapper: give `podman build` RUN steps a private binfmt_misc handler.
#
# Passed as `podman build --runtime WRAPPER`; podrepro writes WRAPPER as
#   #!<podrepro's python> -I
#   CONFIG = {"runtime": "/usr/bin/runc", "shim": "...", "mounts": [[host, inside], ...],
#             "lines": ["<register line>", ...]}
#   <this file>
# buildah calls the runtime as `[global options] create --bundle DIR ... ID`, then start/state/
# delete. For `create` (and `run`) this edits DIR/config.json so the step's process runs under the
# binfmt shim (see binfmt_shim.c), then execs the real runtime with the same arguments; every other
# call is passed through untouched. The shim and qemu are bind-mounted under /dev, a tmpfs of its
# own in every RUN step, so nothing of them ends up in the image layer.
#
# Standalone on purpose (no podrepro import, stdlib only): it runs with `python -I` under buildah,
# with whatever working directory and environment buildah gives it.

import json
import os
import sys
from typing import Any

# global runtime options that take a value (runc/crun): their value is never the subcommand
_VALUE_OPTS = {"--root", "--log", "--log-format", "--criu", "--rootless", "--cgroup-manager"}


def _subcommand(args: list[str]) -> int | None:
    i = 0
    while i < len(args):
        a = args[i]
        if a in _VALUE_OPTS:
            i += 2
            continue
        if not a.startswith("-"):
            return i
        i += 1
    return None


def _bundle(args: list[str]) -> str:
    for i, a in enumerate(args):
        if a in ("--bundle", "-b") and i + 1 < len(args):
            return args[i + 1]
        if a.startswith("--bundle="):
            return a.split("=", 1)[1]
    return "."


def patch_spec(spec: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """Run process.args under the shim: as root (only root may map every uid into the shim's
    namespace), handing the step's own user to the shim, which drops to it before exec."""
    proc = spec["process"]
    user = proc.get("user") or {}
    uid, gid = int(user.get("uid", 0)), int(user.get("gid", 0))
    groups = [int(g) for g in user.get("additionalGids") or []]
    shim = [config["shim_inside"]]
    for line in config["lines"]:
        shim += ["-r", line]
    if uid != 0 or gid != 0:
        shim += ["-u", str(uid), "-g", str(gid), "-G", ",".join(str(g) for g in groups)]
        caps = proc.get("capabilities")
        if caps is not None:
            # a non-root step gets no effective/permitted capabilities; the shim needs root's to
            # write the id maps, and drops them again with the uid (bounding set unchanged)
            for k in ("effective", "permitted"):
                caps[k] = list(caps.get("bounding") or [])
        proc["user"] = {"uid": 0, "gid": 0, "additionalGids": [0]}
    proc["args"] = [*shim, "--", *(proc.get("args") or [])]
    mounts = spec.setdefault("mounts", [])
    for source, destination in config["mounts"]:
        mounts.append({"destination": destination, "type": "bind", "source": source,
                       "options": ["bind", "ro", "nosuid", "nodev"]})
    return spec


def main(argv: list[str], config: dict[str, Any]) -> None:
    args = argv[1:]
    i = _subcommand(args)
    if i is not None and args[i] in ("create", "run"):
        path = os.path.join(_bundle(args[i + 1:]), "config.json")
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
        patch_spec(spec, config)
        tmp = path + ".podrepro"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(spec, f)
        os.replace(tmp, path)
    runtime = config["runtime"]
    os.execv(runtime, [runtime, *args])


if __name__ == "__main__":
    main(sys.argv, CONFIG)  # type: ignore[name-defined]  # noqa: F821  (prepended by podrepro)
