"""Which architectures a matrix runs, and each one's child command line."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from podrepro.arches import ARCHES, Arch, lookup
from podrepro.errors import UsageError


def is_matrix(spec: str) -> bool:
    return "," in spec or spec.strip().lower() == "all"


def arches_for(spec: str, configured: Sequence[str] = ()) -> list[Arch]:
    """``arm,mips`` -> those (any spelling, each once, in order); ``all`` -> the ``arches``
    setting (podrepro.toml's ``arches = [...]``), else every architecture of the table."""
    names = (list(configured) or [a.alias for a in ARCHES]) if spec.strip().lower() == "all" \
        else [n for n in spec.split(",") if n.strip()]
    if not names:
        raise UsageError(f"no architecture in {spec!r}", hint="e.g. podrepro test arm,mips")
    out: list[Arch] = []
    for n in names:
        a = lookup(n)
        if a not in out:
            out.append(a)
    return out


def default_jobs(n_arches: int) -> int:
    """Architectures at once by default: as many as there are cores, at most one per arch."""
    return max(1, min(n_arches, os.cpu_count() or 1))


def child_argv(mode: str, arch: str, options: Sequence[str], extra: Sequence[str]) -> list[str]:
    """``podrepro MODE ARCH OPTIONS -- EXTRA`` as a child process (the same interpreter)."""
    return [sys.executable, "-m", "podrepro", mode, arch, *options, "--", *extra]


# option name -> how a child gets it: (flag when True / flag + value / repeated flag + value)
FLAGS: dict[str, tuple[str, str]] = {
    "profile": ("value", "--profile"), "src": ("value", "--src"), "cpu": ("value", "--cpu"),
    "suite": ("value", "--suite"), "mirror": ("value", "--mirror"), "filter_": ("value", "--filter"),
    "timeout_multiplier": ("value", "--timeout-multiplier"), "repeat": ("value", "--repeat"),
    "env": ("each", "--env"), "host_network": ("true", "--host-network"),
    "private_binfmt": ("true", "--private-binfmt"), "writable_git": ("true", "--writable-git"),
    "no_build": ("true", "--no-build"), "core": ("true", "--core"), "strace": ("true", "--strace"),
    "until_fail": ("true", "--until-fail"), "tmpfs_tree": ("true", "--tmpfs-tree"),
    "network": ("bool", "--network/--no-network"), "cross": ("bool", "--cross/--emulated"),
    "native_harness": ("bool", "--native-harness/--emulated-harness"),
}


def child_options(params: dict[str, object]) -> list[str]:
    """The child's options from the parent command's parameters (those set, by name)."""
    out: list[str] = []
    for name, (how, flag) in FLAGS.items():
        v = params.get(name)
        if v is None or (how != "bool" and (v is False or v == [])):
            continue
        if how == "value":
            out += [flag, str(v)]
        elif how == "each":
            for item in v:  # type: ignore[attr-defined]
                out += [flag, str(item)]
        elif how == "true":
            out.append(flag)
        else:  # "bool": --on/--off
            on, off = flag.split("/")
            out.append(on if v else off)
    return out
