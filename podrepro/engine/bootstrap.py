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
    installer: str = "host-dpkg"  # "host-dpkg" (see HOST_DPKG_HOOK) or "chroot" (mmdebstrap's own)


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

# mmdebstrap --extract-hook (run in its user namespace, $1 = the root) that installs the extracted
# packages with the *host's* dpkg and --root: unpacking and dpkg's own bookkeeping run natively;
# only the maintainer scripts and triggers run (chrooted, by dpkg) under qemu. mmdebstrap's own
# way runs the target's dpkg and apt in the chroot, so every byte of every package is unpacked
# again under emulation; this hook installs the same packages (same dpkg database, same files in
# /etc) in about two thirds of the time. The order follows mmdebstrap's: base-passwd first (its
# preinst creates /etc/passwd), then the Essential:yes packages, then the rest; everything is
# unpacked first (pre-dependencies are already on disk from the extract phase), then dpkg
# configures in dependency order. --path-include=* undoes path-exclude rules of the host's dpkg
# config, which --root does not isolate. Passed inline: the namespace's root may not be able to
# read a file in the user's home.
HOST_DPKG_HOOK = r"""set -eu
root="$1"
cd "$root"
first=; ess=; rest=
# the packages apt resolved for --include, as mmdebstrap hands them to extract hooks
# (/var/cache/apt/archives may hold more: the synced-in package cache)
for d in ${MMDEBSTRAP_ESSENTIAL:?mmdebstrap passed no package list}; do
  d="${d#/}"
  case "$(dpkg-deb --field "$d" Package)" in base-passwd) first="$d"; continue ;; esac
  if [ "$(dpkg-deb --field "$d" Essential)" = yes ]; then ess="$ess $d"; else rest="$rest $d"; fi
done
set -f
hostdpkg() {
  dpkg --root="$root" --log="$root/var/log/dpkg.log" --force-architecture --force-unsafe-io \
    "--path-include=*" "$@" >&2
}
echo "I: podrepro: unpacking $(echo $first $ess $rest | wc -w) packages with the host's dpkg" >&2
hostdpkg --unpack --force-depends $first $ess $rest
echo "I: podrepro: configuring them (maintainer scripts run emulated)" >&2
# in dependency order; the host's dpkg takes its own architecture for the native one, so an
# Architecture: all package's dependency on an armhf (say) package looks unmet to it: those few
# are configured in a second pass, after everything they really need
hostdpkg --configure --pending || hostdpkg --configure --pending --force-depends
bad=$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f '${db:Status-Abbrev} ${binary:Package}\n' | grep -v '^ii ' || true)
if [ -n "$bad" ]; then echo "E: podrepro: not installed: $bad" >&2; exit 1; fi
"""


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
    host_dpkg = spec.installer == "host-dpkg" and spec.variant in VARIANT_PACKAGES
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
        # apt patterns go one per --include (mmdebstrap would split a list at the commas inside them)
        argv += [f"--include={p}" for p in VARIANT_PACKAGES[spec.variant]]
        argv.append("--extract-hook=" + HOST_DPKG_HOOK)
    if spec.include:
        argv.append("--include=" + ",".join(spec.include))
    if spec.debs_cache is not None:
        cache = shlex.quote(str(spec.debs_cache))
        if not host_dpkg:
            argv.append("--skip=essential/unlink")  # keep the essential .debs for sync-out
        argv += [
            '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/',
            f"--setup-hook=sync-in {cache} /var/cache/apt/archives/",
            # the extract variant runs no customize hooks: its last hook is the extract hook
            f"--{'extract' if host_dpkg else 'customize'}-hook=sync-out /var/cache/apt/archives {cache}",
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
