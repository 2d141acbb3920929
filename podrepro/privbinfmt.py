"""Zero-sudo emulation: a binfmt_misc handler private to one container (Linux >= 6.7).

Since Linux 6.7 a user namespace can mount its own binfmt_misc instance, and ``exec`` uses the
first instance found walking from the caller's user namespace up to the host's. So a container
can carry its own qemu handler and the host needs no registration at all. Two facts shape how:

- An instance that exists but has no matching entry gives ``Exec format error``: it does not fall
  back to the host's entries, and it lives as long as its user namespace. Registering inside
  podman's shared rootless namespace (``--cap-add SYS_ADMIN`` + mount) would leave such an
  instance in the user's pause-process namespace and break every container of that user. The
  instance must live in a user namespace of one container alone.
- That is what ``native/binfmt_shim.c`` does, as the container's entrypoint: it unshares a user +
  mount namespace with an identity id map, mounts binfmt_misc, registers the bind-mounted static
  qemu, restores the container's capability bounding set, drops to the run's user and execs the
  command (so exit codes and signals are the command's own). See the C file for the details.

This module is pure argv building plus one side effect, ``ensure_helper``: the shim is compiled
with the host's C compiler (``cc -static -Os``) on first use, into podrepro's cache dir, keyed by
the hash of its source, so a new podrepro version with a changed shim compiles again and an
unchanged one never does.

Limits (see ``LIMITS``): ``podman exec`` into such a container bypasses the entrypoint (an exec'd
process lives in the container's namespace, which has no handler: foreign binaries fail there);
the image's own ENTRYPOINT is replaced (podrepro's images have none).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal, cast

from podrepro.arches import Arch
from podrepro.binfmt.lines import register_line
from podrepro.binfmt.qemu import MIN_KERNEL, kernel_supported, parse_kernel_version, preserve_argv0_supported
from podrepro.errors import HostNotReady, UsageError
from podrepro.findings import Distro
from podrepro.paths import Paths

Mode = Literal["host", "private"]
Setting = Literal["host", "private", "auto"]
MODES: tuple[str, ...] = ("host", "private", "auto")

IN_CONTAINER = "/dev/.podrepro"          # under /dev (a tmpfs per container): never part of an image layer
SHIM = "binfmt-shim"
SOURCE = "binfmt_shim.c"
CC_FLAGS = ("-static", "-Os", "-s")      # static: it runs in any image, whatever its libc (or none)
LIMITS = (
    "podman exec into the container bypasses the entrypoint, so foreign binaries fail there",
    "the image's own ENTRYPOINT is replaced by the shim",
)


# ---------------------------------------------------------------------------------------------
# the kernel and the mode


def check_setting(value: str) -> Setting:
    if value not in MODES:
        raise UsageError(f"binfmt_mode must be one of {', '.join(MODES)}, not {value!r}")
    return cast(Setting, value)


def resolve_mode(setting: str, *, host_usable: Callable[[], bool], kernel_release: str | None = None) -> Mode:
    """``auto``: the host's handler when it is usable (nothing to compile, nothing to mount),
    else a private one when the kernel allows it, else ``host`` (whose check says what to run).
    ``private`` on a kernel that cannot do it is an error with the way out."""
    s = check_setting(setting)
    ok = kernel_supported(kernel_release)
    if s == "host":
        return "host"
    if s == "private":
        if not ok:
            rel = kernel_release if kernel_release is not None else os.uname().release
            raise HostNotReady(
                f"--private-binfmt needs Linux >= {MIN_KERNEL[0]}.{MIN_KERNEL[1]} (this is {rel}): older "
                "kernels do not let a user namespace mount its own binfmt_misc",
                hint="register a host handler once instead: podrepro binfmt register ARCH")
        return "private"
    if host_usable():
        return "host"
    return "private" if ok else "host"


# ---------------------------------------------------------------------------------------------
# the shim: source, hash, compile


def shim_source() -> bytes:
    return resources.files("podrepro").joinpath("native", SOURCE).read_bytes()


def source_hash(source: bytes, flags: Sequence[str] = CC_FLAGS) -> str:
    """Key of the compiled helper: the source and the compiler flags (16 hex digits is plenty)."""
    h = hashlib.sha256(source)
    h.update(b"\0" + " ".join(flags).encode())
    return h.hexdigest()[:16]


def helper_dir(paths: Paths) -> Path:
    return paths.cache / "native"


def helper_file(paths: Paths, digest: str) -> Path:
    return helper_dir(paths) / f"{SHIM}-{digest}"


def compile_argv(cc: str, source: Path, output: Path) -> list[str]:
    return [cc, *CC_FLAGS, "-o", str(output), str(source)]


def install_hint(distro: Distro) -> str:
    """Static libc is a separate package on both families (libc6-dev has libc.a; Fedora splits it)."""
    if distro.family == "fedora":
        return f"{distro.sudo}dnf install -y gcc glibc-static"
    if distro.family == "debian":
        return f"{distro.sudo}apt-get install -y gcc libc6-dev"
    return "install a C compiler and a static C library (Debian: gcc libc6-dev; Fedora: gcc glibc-static)"


def find_cc(which: Callable[[str], str | None]) -> str | None:
    env_cc = os.environ.get("CC", "").strip()
    # CC may carry flags ("gcc -m64"): only a plain program name or path is taken from it
    for name in ([env_cc] if env_cc and " " not in env_cc else []) + ["cc", "gcc", "clang"]:
        found = which(name)
        if found:
            return found
    return None


def ensure_helper(paths: Paths, *, run: Callable[..., Any] | None = None,
                  which: Callable[[str], str | None] | None = None, distro: Distro | None = None,
                  source: bytes | None = None) -> Path:
    """The compiled shim for the current source: compiled once (through the process chokepoint)
    and then reused. Concurrent first runs are safe: each compiles to a private temporary name and
    renames it into place atomically; the loser's rename just replaces an identical file."""
    from podrepro.engine import process
    from podrepro.findings import detect_distro

    src = source if source is not None else shim_source()
    out = helper_file(paths, source_hash(src))
    if _executable(out):
        return out
    d = distro or detect_distro()
    cc = find_cc(which or shutil.which)
    if cc is None:
        raise HostNotReady("--private-binfmt compiles a small static helper on first use, and there is no "
                           "C compiler (cc, gcc or clang) on PATH", hint=install_hint(d))
    paths.ensure_cache()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".shim-", dir=out.parent) as tmp:
        c_file = Path(tmp) / SOURCE
        c_file.write_bytes(src)
        tmp_out = Path(tmp) / SHIM
        cp = (run or process.run)(compile_argv(cc, c_file, tmp_out), timeout=300)
        if cp.returncode != 0 or not _executable(tmp_out):
            err = (cp.stderr or b"").decode(errors="replace")
            static_libc = "cannot find -lc" in err or "-lc:" in err
            what = ("the static C library is missing" if static_libc
                    else f"compiling it failed: {process.last_line(err, f'exit {cp.returncode}')}")
            raise HostNotReady(f"--private-binfmt needs a small static helper, and {what}",
                               hint=install_hint(d))
        tmp_out.chmod(0o755)
        os.replace(tmp_out, out)
    # old helpers (previous sources) are dead weight; a few hundred KiB each
    for old in helper_dir(paths).glob(f"{SHIM}-*"):
        if old != out and old.is_file():
            old.unlink(missing_ok=True)
    return out


def _executable(p: Path) -> bool:
    return p.is_file() and os.access(p, os.X_OK)


# ---------------------------------------------------------------------------------------------
# the host's static qemu


def find_qemu(arch: Arch, distro: Distro | None = None, *,
              which: Callable[[str], str | None] | None = None, root: str = "/") -> str:
    """The host's static qemu for ``arch`` (the same search as host registration), symlinks
    resolved: podman bind-mounts the target anyway, and the basename decides flag P below."""
    from podrepro.binfmt.qemu import find_static_qemu
    from podrepro.findings import detect_distro

    if arch.qemu is None:
        raise UsageError(f"{arch.alias} runs natively; it needs no binfmt handler")
    path = find_static_qemu(arch.qemu, which=which, root=root)
    if path is None:
        d = distro or detect_distro()
        raise HostNotReady(f"no static qemu-{arch.qemu} on this host (needed for --private-binfmt)",
                           hint=d.install("qemu-user-static"))
    return path


def qemu_in_container(qemu_host: str) -> str:
    """Same basename inside: Debian's ``<name>-binfmt-P`` recognises flag P by its own name."""
    return f"{IN_CONTAINER}/{os.path.basename(qemu_host)}"


def flags(qemu_container_path: str, qemu_version: tuple[int, int] | None,
          kernel: tuple[int, int] | None) -> str:
    """F: the kernel opens qemu once, at registration, instead of looking the path up at every exec
    in the exec'ing process's root (a chroot inside the container would not see it); C: setuid and
    sudo inside work, as with podrepro's host handler; P only when qemu can tell it was used (see
    binfmt.qemu.preserve_argv0_supported)."""
    p = preserve_argv0_supported(qemu_container_path, qemu_version, kernel)
    return "FPC" if p else "FC"


# ---------------------------------------------------------------------------------------------
# podman argv


def shim_argv(lines: Sequence[str], *, user: tuple[int, int] | None) -> list[str]:
    """The entrypoint: ``binfmt-shim -r LINE... [-u UID -g GID] --`` (the command follows)."""
    argv = [f"{IN_CONTAINER}/{SHIM}"]
    for ln in lines:
        argv += ["-r", ln]
    if user is not None:
        argv += ["-u", str(user[0]), "-g", str(user[1])]
    return [*argv, "--"]


def podman_args(arch: Arch, helper_path: str | Path, qemu_path: str, *,
                user: tuple[int, int] | None = None, flag_set: str = "FPC") -> list[str]:
    """Extra ``podman run`` options (before the image) for a private handler for ``arch``.

    ``user``: who the command runs as, (uid, gid) in the container's namespace; podman must start
    the shim as root (``--user 0:0``), because only container root may map every uid into the
    private namespace. podrepro runs with ``--userns=keep-id``, whose default user is the host
    user: pass ``(os.getuid(), os.getgid())`` to keep that. None: the command runs as root.
    """
    inside = qemu_in_container(qemu_path)
    line = register_line(arch, inside, flag_set)
    return [
        "--volume", f"{helper_path}:{IN_CONTAINER}/{SHIM}:ro",
        "--volume", f"{qemu_path}:{inside}:ro",
        "--user", "0:0",
        # JSON form: podman takes a JSON array as the exec form (the register line's backslashes
        # are escaped by json.dumps; a plain string would be taken as one program name)
        "--entrypoint", json.dumps(shim_argv([line], user=user)),
    ]


def prepare(arch: Arch, paths: Paths, *, user: tuple[int, int] | None = None,
            qemu_version: Callable[[str], tuple[int, int] | None] | None = None,
            kernel_release: str | None = None) -> list[str]:
    """Everything ``--private-binfmt`` needs before ``podman run``: the compiled helper, the host's
    static qemu and its flags, as the extra podman options. Raises HostNotReady with the fix."""
    from podrepro.binfmt import qemu as host_qemu

    if not arch.emulated:
        return []
    rel = kernel_release if kernel_release is not None else os.uname().release
    if not kernel_supported(rel):
        resolve_mode("private", host_usable=lambda: False, kernel_release=rel)  # raises the explanation
    qemu = find_qemu(arch)
    ver = (qemu_version or host_qemu.qemu_version)(qemu)
    fl = flags(qemu_in_container(qemu), ver, parse_kernel_version(rel))
    helper = ensure_helper(paths)
    return podman_args(arch, helper, qemu, user=user, flag_set=fl)



def bootstrap_register_line(arch: Arch, *, qemu_version: Callable[[str], tuple[int, int] | None] | None = None,
                            kernel_release: str | None = None) -> str:
    """The register line for a bootstrap's own binfmt_misc: mmdebstrap's extract hook mounts one
    in mmdebstrap's user namespace (the host path of qemu is what that namespace sees)."""
    from podrepro.binfmt import qemu as host_qemu

    rel = kernel_release if kernel_release is not None else os.uname().release
    resolve_mode("private", host_usable=lambda: False, kernel_release=rel)  # raises on old kernels
    qemu = find_qemu(arch)
    fl = flags(qemu, (qemu_version or host_qemu.qemu_version)(qemu), parse_kernel_version(rel))
    return register_line(arch, qemu, fl)


# ---------------------------------------------------------------------------------------------
# podman build: RUN steps through an OCI-runtime wrapper


WRAPPER_SOURCE = "oci_wrapper.py"


def wrapper_text(*, python: str, runtime: str, helper: str | Path, qemu: str, lines: Sequence[str]) -> str:
    """The wrapper script: a shebang, its settings, then ``native/oci_wrapper.py`` verbatim."""
    if any(c.isspace() for c in python):
        raise HostNotReady(f"cannot use {python} in a #! line (it contains whitespace)",
                           hint="install podrepro in a virtualenv whose path has no spaces")
    config = {"runtime": runtime, "shim_inside": f"{IN_CONTAINER}/{SHIM}", "lines": list(lines),
              "mounts": [[str(helper), f"{IN_CONTAINER}/{SHIM}"], [qemu, qemu_in_container(qemu)]]}
    body = resources.files("podrepro").joinpath("native", WRAPPER_SOURCE).read_text(encoding="utf-8")
    return f"#!{python} -I\nCONFIG = {json.dumps(config)}\n{body}"


def ensure_runtime_wrapper(paths: Paths, arch: Arch, *, runtime: str, helper: str | Path, qemu: str,
                           flag_set: str, python: str | None = None) -> Path:
    """An executable for ``podman build --runtime``; one file per distinct content (arch, qemu,
    helper, real runtime), written atomically, so concurrent builds never see a partial file."""
    import sys

    line = register_line(arch, qemu_in_container(qemu), flag_set)
    text = wrapper_text(python=python or sys.executable, runtime=runtime, helper=helper, qemu=qemu, lines=[line])
    out = helper_dir(paths) / f"oci-wrapper-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
    if not _executable(out):
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".wrapper-", dir=out.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o755)
        os.replace(tmp, out)
    return out


def build_args(arch: Arch, paths: Paths, *, runtime: str | None = None,
               qemu_version: Callable[[str], tuple[int, int] | None] | None = None,
               kernel_release: str | None = None, python: str | None = None) -> list[str]:
    """Extra ``podman build`` options so RUN steps of ``arch`` use a private handler."""
    from podrepro.binfmt import qemu as host_qemu
    from podrepro.engine import info

    if not arch.emulated:
        return []
    rel = kernel_release if kernel_release is not None else os.uname().release
    resolve_mode("private", host_usable=lambda: False, kernel_release=rel)  # raises on old kernels
    qemu = find_qemu(arch)
    fl = flags(qemu_in_container(qemu), (qemu_version or host_qemu.qemu_version)(qemu), parse_kernel_version(rel))
    helper = ensure_helper(paths)
    wrapper = ensure_runtime_wrapper(paths, arch, runtime=runtime or info.oci_runtime_path(), helper=helper,
                                     qemu=qemu, flag_set=fl, python=python)
    return ["--runtime", str(wrapper)]
