"""Rootless Debian root filesystems with mmdebstrap, for ``podman import``.

``mmdebstrap --mode=unshare ... SUITE FILE`` writes a tar into a temp dir of podrepro's own and
``podman import FILE`` reads it (given standard input, podman 4 copies it to a temp file of its
own first, and leaves that file in /var/tmp when interrupted). Downloaded .debs are synced in and
out of a per-arch package cache (mmdebstrap's documented ``sync-in``/``sync-out`` hooks, with
``--skip=essential/unlink`` for the chroot installer) so a rebuild does not download everything
again.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from podrepro.engine.commands import PODMAN
from podrepro.engine.hostdpkg import host_dpkg_hook

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


# Suites whose init-system-helpers depends on "usrmerge | usr-is-merged" (Debian 12 on): a
# host-dpkg bootstrap of one sets up merged /usr itself before anything is extracted (merged_usr_hook)
# and installs usr-is-merged, as debootstrap does and as Debian's own images have it, instead of
# letting apt pick usrmerge, whose conversion script (perl, under qemu) then finds nothing to
# convert: 10 s of every emulated base (bench/README.md)
PRE_MERGED_USR_SUITES = frozenset({"buster", "bullseye"})

# the directories merged-/usr links into /usr (debootstrap's setup_merged_usr and mmdebstrap's
# hooks/merged-usr/setup00.sh: bin, sbin, lib, plus these per Debian architecture)
MERGED_USR_EXTRA: dict[str, tuple[str, ...]] = {
    "amd64": ("lib32", "lib64", "libx32"), "i386": ("lib64", "libx32"), "mips": ("lib32", "lib64"),
    "mipsel": ("lib32", "lib64"), "mips64el": ("lib32", "lib64", "libo32"), "ppc64el": ("lib64",),
    "s390x": ("lib32",),
}


def merged_usr(suite: str) -> bool:
    """Whether a host-dpkg bootstrap of ``suite`` sets up merged /usr and installs usr-is-merged:
    the recipe decides it (and records it, so the tag names it); the spec only carries it out."""
    return suite not in PRE_MERGED_USR_SUITES


def merged_usr_hook(debian_arch: str) -> str:
    """An mmdebstrap --setup-hook: the merged-/usr symlinks, before any package is extracted
    (mmdebstrap's extraction and dpkg keep a symlinked directory as it is)."""
    dirs = ("bin", "sbin", "lib", *MERGED_USR_EXTRA.get(debian_arch, ()))
    return "".join(f'ln -s usr/{d} "$1/{d}" && mkdir -p "$1/usr/{d}" && ' for d in dirs) + "true"


@dataclass(frozen=True)
class BootstrapSpec:
    debian_arch: str
    suite: str
    variant: str
    mirror: str | None          # None: mmdebstrap's own default
    include: tuple[str, ...] = ()
    debs_cache: Path | None = None
    installer: str = "host-dpkg"  # "host-dpkg" (see HOST_DPKG_HOOK) or "chroot" (mmdebstrap's own)
    merged_usr: bool = False      # host-dpkg: merged /usr set up first, usr-is-merged (the recipe's merged_usr)
    # host-dpkg with a package cache: the hook sends the .debs it downloaded on $PODREPRO_DEBS_FD
    # while dpkg configures (podrepro stores them), instead of mmdebstrap's sync-out afterwards
    debs_fd: bool = False

    @property
    def host_dpkg(self) -> bool:
        """Installed by HOST_DPKG_HOOK (every variant has its package set in VARIANT_PACKAGES)."""
        return self.installer == "host-dpkg" and self.variant in VARIANT_PACKAGES


INSTALLERS = ("host-dpkg", "chroot")

# The package set of each mmdebstrap variant, as the apt patterns mmdebstrap itself resolves
# (see VARIANTS in mmdebstrap(1)); with --variant=extract these are downloaded and extracted with
# their dependencies, and HOST_DPKG_HOOK installs them.
VARIANT_PACKAGES: dict[str, tuple[str, ...]] = {
    "essential": ("?essential",),
    "apt": ("?essential", "apt"),
    "required": ("?essential", "?priority(required)", "apt"),
    "minbase": ("?essential", "?priority(required)", "apt"),
    "buildd": ("?essential", "?priority(required)", "apt", "build-essential"),
    "important": ("?essential", "?priority(required)", "?priority(important)", "apt"),
    "standard": ("?essential", "?priority(required)", "?priority(important)", "?priority(standard)", "apt"),
}



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


def host_dpkg_packages(spec: BootstrapSpec) -> tuple[str, ...]:
    """What a host-dpkg bootstrap asks apt for: the variant's package set (mmdebstrap's own
    patterns), usr-is-merged when merged /usr is set up first, the profile's packages."""
    return (*VARIANT_PACKAGES[spec.variant], *(("usr-is-merged",) if spec.merged_usr else ()), *spec.include)


def mmdebstrap_argv(spec: BootstrapSpec, output: str = "-") -> list[str]:
    """The mmdebstrap command line (pure; unit-tested)."""
    host_dpkg = spec.host_dpkg
    argv = [
        "mmdebstrap", "--mode=unshare", f"--variant={'extract' if host_dpkg else spec.variant}",
        f"--architectures={spec.debian_arch}", "--format=tar",
        # apt's own retries absorb single dropped connections before ours (tenacity) kick in
        "--aptopt=Acquire::Retries \"3\"",
        "--aptopt=Acquire::http::Timeout \"30\"",
        # unpack without fsync: the result goes straight into an image layer anyway
        "--dpkgopt=force-unsafe-io",
    ]
    if host_dpkg:
        if spec.merged_usr:
            argv.append("--setup-hook=" + merged_usr_hook(spec.debian_arch))
        argv.append("--extract-hook=" + host_dpkg_hook(host_dpkg_packages(spec)))
    elif spec.include:
        argv.append("--include=" + ",".join(spec.include))
    if spec.debs_cache is not None:
        cache = shlex.quote(str(spec.debs_cache))
        if not host_dpkg:
            argv.append("--skip=essential/unlink")  # keep the essential .debs for sync-out
        argv += [
            '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/',
            f"--setup-hook=sync-in {cache} /var/cache/apt/archives/",
        ]
        if not (host_dpkg and spec.debs_fd):
            # the extract variant runs no customize hooks: its last hook is the extract hook
            argv.append(f"--{'extract' if host_dpkg else 'customize'}-hook=sync-out /var/cache/apt/archives {cache}")
    argv += [spec.suite, output]
    if spec.mirror:
        argv.append(spec.mirror)
    return argv


# apt's own words for a package set it cannot install (a name it does not know, one without a
# candidate for the architecture, conflicts): the user's package list is to blame, not the mirror
APT_REFUSAL = re.compile(
    r"^E: (Unable to locate package \S+|Package '[^']+' has no installation candidate"
    r"|Couldn't find any package by (?:glob|regex) '[^']+'|Unable to correct problems, you have held broken packages\.)",
    re.MULTILINE)
# the hook's own lines once dpkg works (not the hook's text, which mmdebstrap echoes into the log)
HOOK_INSTALLING = re.compile(r"^I: podrepro: (unpacking|configuring)", re.MULTILINE)


def apt_refusal(log_text: str) -> str | None:
    """apt's first line saying it cannot install the package set, if the log has one."""
    m = APT_REFUSAL.search(log_text)
    return m[1] if m else None


def classify_failure(log_text: str) -> str:
    """'transient' (retry), 'nospace' or 'fatal'."""
    if NO_SPACE.search(log_text):
        return "nospace"
    if TRANSIENT.search(log_text):
        return "transient"
    return "fatal"


def tmpdir(podman: str = PODMAN) -> Path:
    """A temp dir for mmdebstrap that we remove ourselves. It lives in the system temp dir
    (mmdebstrap's default) because the unshared root of ``--mode=unshare`` is a subordinate
    id that cannot enter a 0700 home directory; it is 0711 so that id can traverse it."""
    import tempfile

    from podrepro.engine.podman import own_tmpdir

    return own_tmpdir(Path(tempfile.gettempdir()), "podrepro-mm", podman, 0o711)
