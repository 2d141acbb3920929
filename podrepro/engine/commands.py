"""podman command lines, built as data: pure functions, unit-tested element by element.

The command lines with options worth a test, or that more than one caller runs, are built here;
one-off commands are written where ``podman.Podman`` (or ``service``, ``info``) runs them, and
mmdebstrap's in ``bootstrap``. Nothing outside ``podrepro.engine`` writes a podman argv.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from podrepro.errors import EngineError

PODMAN = os.environ.get("PODREPRO_PODMAN", "podman")

# on an SELinux-enforcing host podrepro's containers run unconfined by SELinux rather than
# relabelling the user's source tree (":z"/":Z" would rewrite every file's label): the choice
# toolbox and distrobox make for the same reason; doctor says so (doctor.checks.check_selinux)
SELINUX_OPT = "label=disable"


def tls_args(ref: str) -> list[str]:
    """Registries on the loopback interface are plain HTTP (a test registry); everything else TLS.
    Loopback means an IP literal in 127.0.0.0/8 or ::1, or ``localhost``: not any name that
    starts with "127." (``127.evil.example`` is a DNS name anyone can point anywhere)."""
    import ipaddress

    host = ref.split("/", 1)[0]
    if host.startswith("["):  # [::1]:5000
        name = host[1:].split("]", 1)[0]
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if name == "localhost":
        # a registry on localhost has a port; a bare "localhost/..." is podman's local image naming
        return ["--tls-verify=false"] if host.startswith("localhost:") else []
    try:
        loopback = ipaddress.ip_address(name).is_loopback
    except ValueError:
        return []
    return ["--tls-verify=false"] if loopback else []


def run_argv(
    binary: str,
    image: str,
    command: Sequence[str],
    *,
    platform: str,
    interactive: bool = False,
    tty: bool = False,
    network: str | None = "none",
    keep_id: bool = False,
    init: bool = False,
    selinux_label_disable: bool = False,
    labels: Mapping[str, str] | None = None,
    name: str | None = None,
    volumes: Sequence[str] = (),
    tmpfs: Sequence[str] = (),
    env: Mapping[str, str | None] | None = None,
    workdir: str | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """The one ``podman run`` argv (runs and image verification alike). ``--pull=never`` so a
    platform mismatch fails fast instead of trying a registry called 'localhost'; ``--rm`` so
    nothing is left behind. ``network`` None: podman's default (a private network); ``labels``
    and ``env`` go in the order given; ``extra`` are options placed just before the image."""
    argv = [binary, "run", "--rm", "--pull=never", "--platform", platform]
    if interactive:
        argv.append("-i")
    if tty:
        argv.append("-t")
    if network is not None:
        argv += ["--network", network]
    if keep_id:
        argv.append("--userns=keep-id")
    if init:
        argv.append("--init")
    if selinux_label_disable:
        # bind-mounted sources keep their labels; only this container's confinement is relaxed
        argv += ["--security-opt", SELINUX_OPT]
    for k, v in (labels or {}).items():
        argv += ["--label", f"{k}={v}"]
    if name:
        argv += ["--name", name]
    for v in volumes:
        argv += ["--volume", v]
    for t in tmpfs:
        argv += ["--tmpfs", t]
    for k, val in (env or {}).items():
        # None: podman takes the value from its own environment (no value in this argv)
        argv += ["--env", k if val is None else f"{k}={val}"]
    if workdir:
        argv += ["--workdir", workdir]
    argv += list(extra)
    argv.append(image)
    argv += list(command)
    return argv


def import_argv(binary: str, oci_arch: str, variant: str | None, ref: str,
                labels: Mapping[str, str], cmd: str = "/bin/bash", source: str = "-") -> list[str]:
    """``podman import`` of a root filesystem tar (``source``: a file, or ``-`` for standard
    input), with platform and labels."""
    argv = [binary, "import", "--os", "linux", "--arch", oci_arch]
    if variant:
        argv += ["--variant", variant]
    for k, v in sorted(labels.items()):
        # podman import's --change parser strips quotes but keeps backslash escapes, so a
        # quoted JSON value would arrive mangled: values go unquoted (and so may not hold spaces)
        if any(c.isspace() for c in k + v):
            raise EngineError(f"label {k}={v!r} contains white space, which podman import cannot carry")
        argv += ["--change", f"LABEL {k}={v}"]
    argv += ["--change", f'CMD ["{cmd}"]', source, ref]
    return argv


def build_argv(binary: str, *, platform: str, containerfile: Path, context: Path, tag: str,
               build_args: Mapping[str, str], labels: Mapping[str, str],
               volumes: Sequence[str] = (), network: bool = True, no_cache: bool = False,
               extra: Sequence[str] = ()) -> list[str]:
    """``extra``: more options, placed before the context (``--runtime WRAPPER`` for zero-sudo)."""
    argv = [binary, "build", "--platform", platform, "--pull=never", "--layers", "--force-rm",
            "-f", str(containerfile), "-t", tag]
    if no_cache:
        argv.append("--no-cache")  # --rebuild: run every step again (new packages from the mirror)
    for k, v in sorted(build_args.items()):
        argv += ["--build-arg", f"{k}={v}"]
    for k, v in sorted(labels.items()):
        argv += ["--label", f"{k}={v}"]
    for v in volumes:
        argv += ["--volume", v]
    if not network:
        argv += ["--network", "none"]
    argv += list(extra)
    argv.append(str(context))
    return argv


def pull_argv(binary: str, ref: str, platform: str | None = None) -> list[str]:
    return [binary, "pull", *(["--platform", platform] if platform else []), *tls_args(ref), ref]


def push_argv(binary: str, tag: str, ref: str) -> list[str]:
    return [binary, "push", *tls_args(ref), tag, ref]


def export_argv(binary: str, container: str, out: Path) -> list[str]:
    return [binary, "export", "-o", str(out), container]


def joined_args(container: str, *, user: tuple[int, int]) -> list[str]:
    """Options for a container that joins ``container``'s network and user namespaces (the
    debugger beside the program it debugs: it reaches the gdbstub on that namespace's loopback,
    which no other session and nothing on the host can see). Sharing the user namespace is what
    lets a rootless container mount its /sys inside another's network namespace."""
    return ["--network", f"container:{container}", "--userns", f"container:{container}",
            "--user", f"{user[0]}:{user[1]}"]


def image_mount_args(image: str, target: str) -> list[str]:
    """Mount ``image``'s root filesystem read-only at ``target`` (a sysroot for the debugger)."""
    return ["--mount", f"type=image,source={image},destination={target}"]


def running_argv(binary: str, container: str) -> list[str]:
    return [binary, "container", "inspect", "--format", "{{.State.Running}}", container]


def remove_argv(binary: str, container: str) -> list[str]:
    """Stop (at once) and remove a container; ``--ignore``: gone already is fine."""
    return [binary, "rm", "--force", "--ignore", "--time", "0", container]
