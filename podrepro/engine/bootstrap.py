"""Rootless Debian root filesystems with mmdebstrap, streamed straight into ``podman import``.

No tarball touches the disk: ``mmdebstrap --mode=unshare ... SUITE -`` writes a tar to stdout and
``podman import -`` reads it. Downloaded .debs are synced in and out of a per-arch package cache
(mmdebstrap's documented ``sync-in``/``sync-out`` hooks with ``--skip=essential/unlink``) so a
rebuild does not download everything again.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DEBIAN_SUITES = frozenset({
    "buster", "bullseye", "bookworm", "trixie", "forky", "duke", "sid",
    "unstable", "testing", "stable", "oldstable",
})

# Lines of mmdebstrap/apt output that mean "the network or the mirror hiccupped" (worth a retry),
# as opposed to a wrong suite, a missing package or a full disk (not worth one).
TRANSIENT = re.compile(
    r"(Temporary failure resolving|Could not connect|Connection (timed out|reset|refused|failed)"
    r"|Failed to fetch|Hash Sum mismatch|File has unexpected size|50[0-4] |Undetermined Error"
    r"|Unable to connect|Network is unreachable|Read error|Bad Gateway|Service Unavailable"
    r"|Some index files failed to download|Release file .* is not valid yet)",
    re.IGNORECASE,
)
NO_SPACE = re.compile(r"(No space left on device|ENOSPC|write error.*space|not enough free space)", re.IGNORECASE)


@dataclass(frozen=True)
class BootstrapSpec:
    debian_arch: str
    suite: str
    variant: str
    mirror: str | None          # None: mmdebstrap's own default
    include: tuple[str, ...] = ()
    debs_cache: Path | None = None


def host_debian_mirror(paths: Sequence[Path] = (Path("/etc/apt/sources.list"),),
                       dirs: Sequence[Path] = (Path("/etc/apt/sources.list.d"),)) -> str | None:
    """The first Debian archive URI in the host's apt sources (one-line and deb822 formats).

    Only entries for a Debian suite (not -security/-updates pockets) with component ``main``
    count, so third-party repositories on the host are never used as the Debian mirror."""
    files: list[Path] = [p for p in paths if p.is_file()]
    for d in dirs:
        if d.is_dir():
            files += sorted(p for p in d.iterdir() if p.suffix in (".list", ".sources"))
    for f in files:
        try:
            text = f.read_text(errors="replace")
        except OSError:
            continue
        found = _parse_deb822(text) if f.suffix == ".sources" else _parse_oneline(text)
        if found:
            return found
    return None


def _ok(uri: str, suites: Sequence[str], comps: Sequence[str]) -> bool:
    return (uri.startswith(("http://", "https://", "file:/"))
            and any(s in DEBIAN_SUITES for s in suites) and "main" in comps)


def _parse_oneline(text: str) -> str | None:
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        parts = line.split()[1:]
        if parts and parts[0].startswith("["):  # options: [arch=amd64 signed-by=...]
            while parts and not parts[0].endswith("]"):
                parts.pop(0)
            parts = parts[1:]
        if len(parts) >= 3 and _ok(parts[0], [parts[1]], parts[2:]):
            return parts[0].rstrip("/")
    return None


def _parse_deb822(text: str) -> str | None:
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            k, v = line.split(":", 1)
            fields[k.strip().lower()] = v.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        if "deb" not in fields.get("types", "").split():
            continue
        for uri in fields.get("uris", "").split():
            if _ok(uri, fields.get("suites", "").split(), fields.get("components", "").split()):
                return uri.rstrip("/")
    return None


def mmdebstrap_argv(spec: BootstrapSpec, output: str = "-") -> list[str]:
    """The mmdebstrap command line (pure; unit-tested)."""
    argv = [
        "mmdebstrap", "--mode=unshare", f"--variant={spec.variant}",
        f"--architectures={spec.debian_arch}", "--format=tar",
        # apt's own retries absorb single dropped connections before ours (tenacity) kick in
        "--aptopt=Acquire::Retries \"3\"",
        "--aptopt=Acquire::http::Timeout \"30\"",
        # unpack without fsync: the result goes straight into an image layer anyway
        "--dpkgopt=force-unsafe-io",
    ]
    if spec.include:
        argv.append("--include=" + ",".join(spec.include))
    if spec.debs_cache is not None:
        cache = shlex.quote(str(spec.debs_cache))
        argv += [
            "--skip=essential/unlink",
            '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/',
            f"--setup-hook=sync-in {cache} /var/cache/apt/archives/",
            f"--customize-hook=sync-out /var/cache/apt/archives {cache}",
        ]
    argv += [spec.suite, output]
    if spec.mirror:
        argv.append(spec.mirror)
    return argv


def classify_failure(log_text: str) -> str:
    """'transient' (retry), 'nospace' or 'fatal'."""
    if NO_SPACE.search(log_text):
        return "nospace"
    if TRANSIENT.search(log_text):
        return "transient"
    return "fatal"
