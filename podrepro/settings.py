"""Every setting podrepro has: its name, type, default, help and allowed values (``config``
resolves them from their sources; ``podrepro config show`` and the README's table list them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setting:
    name: str
    kind: type
    default: Any
    help: str
    choices: tuple[str, ...] = ()


SETTINGS: tuple[Setting, ...] = (
    Setting("suite", str, "auto", "Debian suite of base images ('auto' = the arch table's default)"),
    Setting("mirror", str, "auto",
            "Debian mirror URL ('auto' = the host's apt sources if any, else mmdebstrap's default)"),
    Setting("profile", str, "generic", "profile used by build/test/shell/run"),
    Setting("variant", str, "minbase", "mmdebstrap variant of base images",
            ("minbase", "buildd", "apt", "essential", "required", "important", "standard")),
    Setting("installer", str, "host-dpkg",
            "how base images install their packages: 'host-dpkg' = the host's dpkg unpacks, only maintainer "
            "scripts run emulated (faster); 'chroot' = mmdebstrap's own way, the target's dpkg and apt "
            "under emulation", ("host-dpkg", "chroot")),
    Setting("network", bool, False, "give run/test/shell a private network (never the host's)"),
    Setting("timeout_multiplier", float, 4.0,
            "how much slower than native tests may be (passed to harnesses that know how)"),
    Setting("cpu", str, "", "emulated CPU model (QEMU_CPU), empty = qemu's default"),
    Setting("core", bool, False, "let emulated programs that crash dump core into .podrepro/cores/ARCH (--core)"),
    Setting("arches", list, [],
            "the architectures 'all' means on run/build/test (podrepro test all); empty = every architecture "
            "of the table"),
    Setting("env", list, [], "environment variables passed into containers (NAME or NAME=VALUE)"),
    Setting("progress", str, "auto", "progress display", ("auto", "plain", "none")),
    Setting("build_mode", str, "auto",
            "how build (and test's build step) compiles: 'emulated' = in the target's container under qemu; "
            "'cross' = natively in a cross image (Debian's cross toolchain, the target's libraries through "
            "multiarch), tests still emulated; 'auto' = the profile's build_mode, else what the build tree "
            "was configured with, else emulated", ("auto", "emulated", "cross")),
    Setting("test_mode", str, "auto",
            "how test runs its harness: 'emulated' = all of it in the target's container; 'native-harness' = "
            "the test driver natively in the cross image, only the target's binaries under qemu; 'auto' = the "
            "profile's test_mode, else emulated", ("auto", "emulated", "native-harness")),
    Setting("connection", str, "",
            "podman system connection (ssh) that runs run/shell/build/test ('' = this host); the project is "
            "synced to it, the image sent to it. Your config or --connection only, never a project file"),
    Setting("binfmt_mode", str, "host",
            "how foreign binaries find qemu: 'host' = the host's binfmt_misc handler (podrepro binfmt "
            "register), 'private' = a handler private to each container (Linux >= 6.7, no root, no host "
            "change), 'auto' = the host's when usable, else private", ("host", "private", "auto")),
)
BY_NAME = {s.name: s for s in SETTINGS}
