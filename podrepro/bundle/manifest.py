"""A repro bundle's file format: its members, its manifest, the host facts, the comparison.

A bundle is an (uncompressed) tar of:

- ``manifest.json``: what was run, where, and what came of it (``VERSION``; README "Repro bundles");
- ``image.oci.tar``: the image, ``podman save --format oci-archive`` (its layers are gzipped);
  absent with ``--no-image``;
- ``tree.diff``: the working tree against the commit (``git diff --binary``); absent when clean;
- ``tree.tar.gz``: the tree's files; absent with ``--no-tree``;
- ``result/log.txt``: the command's output; ``result/cores/NAME``: the cores it left.

Reading one that came from elsewhere: only those names, regular files, each once, within size
limits; the manifest's fields are checked before anything else is used.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podrepro.errors import PodreproError

VERSION = 1
MANIFEST, IMAGE, DIFF, TREE, LOG = "manifest.json", "image.oci.tar", "tree.diff", "tree.tar.gz", "result/log.txt"
CORES = "result/cores/"
MAX_BUNDLE_BYTES = 64 * 1024**3
MAX_JSON_BYTES = 4 * 1024**2
SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")
IMAGE_ID = re.compile(r"(sha256:)?[0-9a-f]{64}")
TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,200}:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
# the host facts a replay puts side by side with the bundle's, in this order
FACTS = ("podrepro", "qemu", "binfmt_flags", "kernel", "distro", "host_cpu", "podman", "image_id")


@dataclass(frozen=True)
class Outcome:
    exit_status: int
    tests_ran: int | None = None
    failed_tests: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"exit_status": self.exit_status, "tests_ran": self.tests_ran, "failed_tests": list(self.failed_tests)}

    def describe(self) -> str:
        if self.failed_tests:
            return f"exit {self.exit_status}, {len(self.failed_tests)} failed: {', '.join(self.failed_tests)}"
        if self.tests_ran is not None:
            return f"exit {self.exit_status}, {self.tests_ran} tests ran" + (", all passed" if self.exit_status == 0 else "")
        return f"exit {self.exit_status}"


@dataclass(frozen=True)
class Verdict:
    word: str                       # reproduced | different | not reproduced
    why: str
    facts: tuple[tuple[str, str, str], ...] = field(default=())   # (fact, bundle's, here) that differ


def compare(mode: str, then: Outcome, now: Outcome) -> tuple[str, str]:
    """(verdict, why): the same failing tests (test) or exit status (run) is "reproduced"; a
    failure that now passes is "not reproduced"; anything else is "different", with what."""
    if then.exit_status != 0 and now.exit_status == 0 and not now.failed_tests:
        return "not reproduced", f"it passes here ({now.describe()}); the bundle's run: {then.describe()}"
    if mode == "test" and (then.failed_tests or now.failed_tests):
        if set(then.failed_tests) == set(now.failed_tests):
            return "reproduced", f"the same {len(now.failed_tests)} failing test(s): {', '.join(now.failed_tests)}"
        gone = sorted(set(then.failed_tests) - set(now.failed_tests))
        new = sorted(set(now.failed_tests) - set(then.failed_tests))
        parts = ([f"no longer failing: {', '.join(gone)}"] if gone else []) + ([f"failing now: {', '.join(new)}"] if new else [])
        return "different", "; ".join(parts)
    if then.exit_status == now.exit_status:
        return "reproduced", f"the same result ({now.describe()})"
    return "different", f"exit {now.exit_status} here, exit {then.exit_status} in the bundle"


def differing_facts(then: Mapping[str, Any], now: Mapping[str, Any]) -> tuple[tuple[str, str, str], ...]:
    return tuple((k, str(then.get(k)), str(now.get(k))) for k in FACTS if str(then.get(k)) != str(now.get(k)))


def host_facts(interpreter: str | None, flags: str | None, image_id: str | None) -> dict[str, str | None]:
    """What a replay compares: podrepro, the qemu that runs the architecture (None when native),
    the binfmt handler's flags, kernel, distro, host CPU, podman, the image's ID."""
    from podrepro import __version__
    from podrepro.engine import process

    qv = _qemu_version(interpreter) if interpreter else None
    pv = None
    try:
        cp = process.run(["podman", "--version"], timeout=30)
        pv = cp.stdout.decode(errors="replace").strip().rpartition(" ")[2] or None
    except PodreproError:
        pass
    return {"podrepro": __version__, "qemu": qv, "binfmt_flags": flags,
            "kernel": os.uname().release, "distro": _os_release("PRETTY_NAME"), "host_cpu": _cpu_model(),
            "podman": pv, "image_id": normal_id(image_id) if image_id else None}


def _qemu_version(interpreter: str) -> str | None:
    """"7.2.22 (Debian 1:7.2+dfsg-7)" from ``--version`` of the binary the handler names (a
    ``-binfmt-P`` wrapper refuses to run outside binfmt_misc: its target is asked)."""
    from podrepro.engine import process

    try:
        cp = process.run([os.path.realpath(interpreter), "--version"], timeout=10)
    except PodreproError:
        return None
    m = re.search(r"version (\S+(?: \([^)]*\))?)", cp.stdout.decode(errors="replace"))
    return m.group(1) if m and cp.returncode == 0 else None


def normal_id(image_id: str) -> str:
    return image_id.removeprefix("sha256:")


def _os_release(key: str, path: str = "/etc/os-release") -> str | None:
    try:
        for line in Path(path).read_text(errors="replace").splitlines():
            k, _, v = line.partition("=")
            if k == key:
                return v.strip().strip("\"'")
    except OSError:
        pass
    return None


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            k, _, v = line.partition(":")
            if k.strip() in ("model name", "cpu model", "Model"):
                return v.strip()
    except OSError:
        pass
    return None


def check(m: Any, where: str) -> dict[str, Any]:
    """The manifest's fields, with types, before anything of it is used."""
    def bad(what: str) -> PodreproError:
        return PodreproError(f"{where}: the manifest's {what} (not a podrepro bundle, or damaged)",
                             hint="ask for the bundle again")

    if not isinstance(m, dict) or not isinstance(m.get("version"), int):
        raise bad("version is missing")
    if m["version"] > VERSION:
        raise PodreproError(f"{where} is a version {m['version']} bundle; this podrepro reads version {VERSION}",
                            hint="upgrade podrepro")
    if m.get("mode") not in ("test", "run") or not isinstance(m.get("arch"), str):
        raise bad("mode or arch")
    if not isinstance(m.get("args"), list) or not all(isinstance(a, str) for a in m["args"]):
        raise bad("args")
    src, img, res = m.get("source"), m.get("image"), m.get("result")
    if not isinstance(src, dict) or not (src.get("commit") is None or SHA.fullmatch(str(src["commit"]))):
        raise bad("source.commit")
    sub = str(src.get("subdir") or "")
    if sub.startswith("/") or ".." in Path(sub).parts:
        raise bad("source.subdir")
    if not isinstance(img, dict) or not TAG.fullmatch(str(img.get("tag"))) or not (
            img.get("id") is None or IMAGE_ID.fullmatch(str(img["id"]))):
        raise bad("image")
    if not isinstance(res, dict) or not isinstance(res.get("exit_status"), int):
        raise bad("result")
    if not isinstance(m.get("host"), dict):
        raise bad("host")
    return m


def outcome_of(m: Mapping[str, Any]) -> Outcome:
    r = m["result"]
    ran = r.get("tests_ran")
    return Outcome(int(r["exit_status"]), ran if isinstance(ran, int) else None,
                   tuple(str(t) for t in r.get("failed_tests") or ()))


def unpack(path: Path, into: Path) -> dict[str, Any]:
    """The bundle's members into ``into`` (a private directory); its checked manifest."""
    if not path.is_file():
        raise PodreproError(f"{path}: no such file", hint="the bundle is the file 'podrepro bundle' wrote")
    seen: set[str] = set()
    total = 0
    try:
        with tarfile.open(path, "r:") as tf:
            for mem in tf:
                name = mem.name
                ok = name in (MANIFEST, IMAGE, DIFF, TREE, LOG) or (
                    name.startswith(CORES) and "/" not in name[len(CORES):] and name[len(CORES):] not in ("", ".", ".."))
                if not ok or not mem.isfile():
                    raise PodreproError(f"{path}: unexpected member {name!r}: not a podrepro bundle")
                if name in seen:
                    raise PodreproError(f"{path}: {name} appears twice (refused)")
                seen.add(name)
                total += mem.size
                if total > MAX_BUNDLE_BYTES or (name == MANIFEST and mem.size > MAX_JSON_BYTES):
                    raise PodreproError(f"{path}: {name} is too large: refused")
                f = tf.extractfile(mem)
                assert f is not None
                out = into / name
                out.parent.mkdir(parents=True, exist_ok=True)
                with open(out, "xb") as w:
                    while chunk := f.read(1 << 20):
                        w.write(chunk)
    except (tarfile.TarError, EOFError) as e:
        raise PodreproError(f"{path} is truncated or not a podrepro bundle ({e})", hint="ask for the bundle again") from None
    if MANIFEST not in seen:
        raise PodreproError(f"{path} is not a podrepro bundle (no {MANIFEST})")
    try:
        m = json.loads((into / MANIFEST).read_bytes())
    except ValueError:
        raise PodreproError(f"{path}: {MANIFEST} is not JSON") from None
    return check(m, str(path))


def check_image_archive(archive: Path, tag: str, image_id: str) -> dict[str, str]:
    """The OCI archive holds one image, named ``tag``, whose config is ``image_id`` (its digest,
    computed here) and carries podrepro's recipe labels for its platform. Returns its labels.
    Nothing is loaded until this passed."""
    from podrepro.images.sharing import check_labels

    try:
        with tarfile.open(archive, "r:") as tf:
            def blob(name: str) -> bytes:
                f = tf.extractfile(name)
                if f is None:
                    raise KeyError(name)
                raw = f.read(MAX_JSON_BYTES + 1)
                if len(raw) > MAX_JSON_BYTES:
                    raise ValueError(f"{name} too large")
                return raw

            def by_digest(d: str) -> bytes:
                algo, _, hexd = d.partition(":")
                if algo != "sha256" or not re.fullmatch(r"[0-9a-f]{64}", hexd):
                    raise ValueError(f"digest {d!r}")
                raw = blob(f"blobs/sha256/{hexd}")
                if hashlib.sha256(raw).hexdigest() != hexd:
                    raise ValueError(f"blob {hexd[:12]} does not match its digest")
                return raw

            index = json.loads(blob("index.json"))
            mans = index.get("manifests") or []
            if len(mans) != 1:
                raise ValueError("not exactly one image")
            name = (mans[0].get("annotations") or {}).get("org.opencontainers.image.ref.name")
            if name != tag:
                raise ValueError(f"named {name!r}, the manifest says {tag}")
            manifest = json.loads(by_digest(mans[0]["digest"]))
            cdigest = manifest["config"]["digest"]
            if normal_id(cdigest.partition(":")[2]) != normal_id(image_id):
                raise ValueError(f"its config is {cdigest[:19]}…, the manifest says {image_id[:19]}…")
            conf = json.loads(by_digest(cdigest))
    except (tarfile.TarError, EOFError, OSError, KeyError, ValueError, TypeError, AttributeError) as e:
        raise PodreproError(f"the bundled image does not check out: {e}", hint="ask for the bundle again") from None
    labels = dict((conf.get("config") or {}).get("Labels") or {})
    _, labelled = check_labels(labels, str(conf.get("architecture", "")), "the bundled image")
    if labelled != tag:
        raise PodreproError(f"the bundled image's recipe says {labelled}, its name is {tag}")
    return labels


def env_names(items: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """(NAME=VALUE literals, NAME pass-throughs) of --env items."""
    lit: dict[str, str] = {}
    passed: list[str] = []
    for it in items:
        k, eq, v = it.partition("=")
        if eq:
            lit[k] = v
        elif k not in passed:
            passed.append(k)
    return lit, passed


def redact(text: bytes, secrets: Mapping[str, str]) -> bytes:
    """``text`` with every passed-through value (4 characters or more) replaced by ``<$NAME>``."""
    for name, value in sorted(secrets.items(), key=lambda kv: -len(kv[1])):
        if len(value) >= 4:
            text = text.replace(value.encode(), f"<${name}>".encode())
    return text
