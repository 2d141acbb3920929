"""The Debian kernel a ``--system`` VM boots: fetched once per image with the image's own apt
(its sources, its keyring: apt checks the signatures), cached in podrepro's cache, and its
``vmlinuz`` taken out of the .deb here (an ar archive around a tar; nothing is installed).
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import tempfile
from pathlib import Path

from podrepro.arches import Arch
from podrepro.errors import EngineError, PodreproError
from podrepro.system.machines import Machine

FETCH_SH = r"""set -e
apt-get update -qq >/dev/null
v=$(apt-cache depends "$1" | sed -n 's/^ *Depends: \(linux-image-[^ ]*\).*/\1/p' | head -n1)
[ -n "$v" ] || { echo "podrepro: no kernel package behind $1" >&2; exit 3; }
cd /out
apt-get download -q "$v" >/dev/null 2>/dev/null || apt-get download "$v"
"""


def vmlinuz_from_deb(deb: bytes) -> tuple[str, bytes]:
    """(file name, bytes) of ``boot/vmlinuz-*`` in a Debian kernel package."""
    if not deb.startswith(b"!<arch>\n"):
        raise PodreproError("the kernel package is not a Debian package (no ar header)")
    pos = 8
    while pos + 60 <= len(deb):
        head = deb[pos:pos + 60]
        name = head[:16].decode(errors="replace").strip().rstrip("/")
        size = int(head[48:58].decode().strip() or 0)
        body = deb[pos + 60:pos + 60 + size]
        pos += 60 + size + (size % 2)
        if name.startswith("data.tar"):
            with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as tf:
                for m in tf:
                    base = m.name.lstrip("./")
                    if m.isfile() and base.startswith("boot/vmlinuz-"):
                        f = tf.extractfile(m)
                        assert f is not None
                        return base.rpartition("/")[2], f.read()
            break
    raise PodreproError("the kernel package holds no boot/vmlinuz-*")


def ensure(arch: Arch, machine: Machine, image: str, hash12: str, *, binary: str, say: object) -> Path:
    """The kernel for VMs of ``image`` (fetched the first time, with the image's apt); its path."""
    from podrepro.engine import commands, process
    from podrepro.paths import get_paths

    paths = get_paths()
    d = paths.ensure_cache() / "system" / f"{arch.alias}-{hash12}"
    meta = d / "kernel.json"
    if meta.is_file():
        try:
            found = d / str(json.loads(meta.read_text())["vmlinuz"])
            if found.is_file():
                return found
        except (ValueError, KeyError, TypeError):
            pass
    if callable(say):
        say(f"fetching the {machine.kernel_package} kernel with {image}'s apt (once per image)")
    d.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kernel-", dir=d) as tmp:
        argv = commands.run_argv(binary, image, ["sh", "-c", FETCH_SH, "sh", machine.kernel_package],
                                 platform=arch.oci_platform, network=None, volumes=[f"{tmp}:/out"])
        cp = process.run(argv, timeout=900)
        debs = sorted(Path(tmp).glob("linux-image-*.deb"))
        if cp.returncode != 0 or not debs:
            raise EngineError(f"fetching {machine.kernel_package} for {arch.alias} failed: "
                              f"{process.last_line(cp.stderr, f'exit {cp.returncode}')}",
                              hint="the image's apt needs its mirror: check the network")
        name, data = vmlinuz_from_deb(debs[0].read_bytes())
        out = d / name
        part = d / f".{name}.part"
        part.write_bytes(data)
        part.replace(out)
        meta.write_text(json.dumps({"vmlinuz": name, "package": debs[0].name}) + "\n")
    shutil.rmtree(d / "partial", ignore_errors=True)
    return out
