"""``podrepro run|test --system ARCH``: the same podrepro image booted as a full-system VM of the
target architecture with a Debian kernel of that architecture (``podrepro.system.machines``).

The image (built as usual if missing), Debian's kernel for it (``kernel``), an initramfs of the
image plus the project (``initramfs``), qemu-system (``vm``). ``test`` builds and tests inside
the VM and its results file comes back; the exit status is the command's. A second opinion: the
kernel is the target's, so what qemu-user gets wrong (``podrepro.fidelity``) is not there.
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podrepro.errors import PodreproError, UsageError
from podrepro.reporting import Confirm, Notify, ReporterFor
from podrepro.results import Counted
from podrepro.system import initramfs


@dataclass(frozen=True)
class SystemRun:
    exit_status: int
    seconds: float
    failed_tests: tuple[str, ...] = ()
    tests_ran: int | None = None


def run_system(mode: str, arch_name: str, args: Sequence[str], *, profile: str | None, src: Path | None,
               env: Sequence[str], filt: str | None, timeout_multiplier: float | None, memory: int | None,
               confirm: Confirm | None, progress: ReporterFor, say: Notify, show: Notify) -> SystemRun:
    from podrepro import config, runner, workflows
    from podrepro.arches import ARCHES, lookup
    from podrepro.engine import process
    from podrepro.engine.podman import Podman
    from podrepro.images.target import target
    from podrepro.paths import get_paths
    from podrepro.system import kernel, vm
    from podrepro.system.machines import machine_for

    arch = lookup(arch_name)
    machine = machine_for(arch)
    if process.which(machine.qemu) is None:
        raise PodreproError(f"{machine.qemu} is not installed: --system boots a {arch.alias} VM with it",
                            hint=f"install {machine.package} (Debian/Ubuntu: sudo apt install {machine.package}; "
                            "Fedora: sudo dnf install qemu-system-" + machine.qemu.removeprefix("qemu-system-") + ")")
    if mode == "run" and not args:
        raise UsageError("run --system needs a command: podrepro run --system ARCH -- CMD")
    cfg = config.resolve({"profile": profile, "timeout_multiplier": timeout_multiplier}, src=src)
    t = target(cfg, arch.alias, None)
    root = cfg.project_root
    mult = float(cfg["timeout_multiplier"])
    vals = runner.placeholders(arch, t.profile, root, mult)
    tag = t.recipe.tag
    eng = Podman()
    if not eng.image_exists_cli(tag):
        workflows.gate_binfmt(cfg, arch, confirm)
        with eng:
            workflows.ensure_image(cfg, eng, t, progress=progress)
    vmlinuz = kernel.ensure(arch, machine, tag, t.recipe.hash12, binary=eng.binary, say=say)
    results: list[str] = []
    kind = "junit"
    if mode == "test":
        if t.profile.build_dir:  # as test does: a tree configured elsewhere (another path, image) is reset
            from podrepro import buildtree

            for note in buildtree.prepare(root, vals["build_dir"], buildtree.TreeFor(arch.alias, tag, "emulated")):
                say(note)
        command = ["sh", "-c", f"{shlex.join(runner.build_command(t.profile, vals, []))} && "
                   f"{{ {shlex.join(runner.test_command(t.profile, vals, filt, list(args), mult))}; }}"]
        workdir = root
        if t.profile.results:
            from podrepro import results as res

            kind, rel = res.parse_spec(t.profile.results)
            results.append(runner.substitute([rel], vals)[0])
            res.clear(root / results[0])
    else:
        command, workdir = list(args), runner.workdir_for(root, Path.cwd())
    spec = runner.RunSpec(arch=arch, image=tag, command=tuple(command), project_root=root, workdir=workdir,
                          env=runner.parse_env([*cfg["env"], *env], os.environ))
    guest_env = {k: (v if v is not None else os.environ.get(k, "")) for k, v in
                 runner.container_env(spec, t.profile, vals, mult).items()}
    guest_env.update({"HOME": "/tmp", "PODREPRO_EMULATED": "0", "PODREPRO_SYSTEM": "1"})
    guest_env.pop("PATH", None)
    others = [runner.placeholders(a, t.profile, root, mult)["build_dir"] for a in ARCHES if a is not arch]
    paths = get_paths()
    paths.state.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="podrepro-system-", dir=paths.state) as tmpd:
        tmp = Path(tmpd)
        image_part, image_size = _image_part(eng, arch.alias, tag, t.recipe.hash12, tmp, say)
        init = vm.init_script(command, str(workdir), guest_env, results, str(root))
        files = initramfs.project_files(root, [".podrepro", ".git", *others])
        with open(tmp / "initrd.gz", "wb") as out_f:
            with open(image_part, "rb") as cached:
                shutil.copyfileobj(cached, out_f, 1 << 20)
            unpacked = (image_size + initramfs.write_run(out_f, root, files, init)) / 2**20
        size_mib = (tmp / "initrd.gz").stat().st_size / 2**20
        if machine.ram_budget_mib and size_mib + unpacked > machine.ram_budget_mib:
            raise PodreproError(f"the VM's initramfs is {size_mib:.0f} MiB, {unpacked:.0f} MiB unpacked: a {arch.alias} "
                                f"VM ({' '.join(machine.args)}) holds at most {machine.ram_budget_mib} MiB of both",
                                hint="a smaller profile's image (e.g. --profile base for run --system)")
        say(f"booting {arch.alias} ({machine.qemu} {' '.join(machine.args)}, Debian kernel {vmlinuz.name}, "
            f"initramfs {size_mib:.0f} MiB)")
        timeout = float(os.environ.get("PODREPRO_SYSTEM_TIMEOUT") or 1800)
        out = vm.boot(vm.qemu_argv(machine, vmlinuz, tmp / "initrd.gz", memory), show=show, timeout=timeout)
    if out.exit_status is None:
        last = next((ln for ln in reversed(out.tail) if ln.strip()), "no output")
        raise PodreproError(f"the {arch.alias} VM ended before the command did (its console's last line: {last[-200:]})",
                            hint="more memory with --system-memory MIB, or see podrepro -v")
    say(f"the {arch.alias} VM ran for {out.seconds:.1f} s; exit {out.exit_status}")
    if mode == "test" and results:
        counted = _count(out.exit_status, out.results, root, results, kind, arch.alias, filt, say)
        return SystemRun(out.exit_status, out.seconds, counted.failed, counted.ran)
    return SystemRun(out.exit_status, out.seconds)


def _image_part(eng: Any, alias: str, tag: str, hash12: str, tmp: Path, say: Notify) -> tuple[Path, int]:
    """The image's part of the initramfs (and its size unpacked), made once per image ID
    (``podman export`` of a container that never starts) and kept beside its kernel."""
    import json

    from podrepro.engine import process
    from podrepro.paths import get_paths

    info = eng.inspect_id_cli(tag)
    d = get_paths().ensure_cache() / "system" / f"{alias}-{hash12}"
    d.mkdir(parents=True, exist_ok=True)
    part, meta = d / f"rootfs-{info[:12]}.cpio.gz", d / f"rootfs-{info[:12]}.json"
    try:
        if part.is_file():
            return part, int(json.loads(meta.read_text())["unpacked"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    say(f"packing {tag} for VMs (once per image)")
    name = f"podrepro-system-{secrets.token_hex(4)}"
    cp = eng.create_container(tag, name)
    try:
        if cp.returncode != 0:
            raise PodreproError(f"podman create {tag} failed: {process.last_line(cp.stderr)}")
        ex = process.run([eng.binary, "export", "-o", str(tmp / "rootfs.tar"), name], timeout=1800)
        if ex.returncode != 0:
            raise PodreproError(f"podman export failed: {process.last_line(ex.stderr)}")
    finally:
        eng.remove_container(name)
    tmp_part = d / f".{part.name}.{secrets.token_hex(4)}.part"
    try:
        with open(tmp_part, "wb") as f:
            size = initramfs.write_image(f, tmp / "rootfs.tar")
        for old in d.glob("rootfs-*"):  # an earlier build of this tag
            old.unlink(missing_ok=True)
        meta.write_text(json.dumps({"unpacked": size, "image": info}) + "\n")
        tmp_part.replace(part)
    finally:
        tmp_part.unlink(missing_ok=True)
        (tmp / "rootfs.tar").unlink(missing_ok=True)
    return part, size


def _count(rc: int, data: bytes, root: Path, results: list[str], kind: str, alias: str, filt: str | None,
           say: Notify) -> Counted:
    """The results file the VM sent, in place; what ran, said like ``test`` says it."""
    import io

    from podrepro.bundle.snapshot import check_member

    if data:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
            for m in tf.getmembers():
                check_member(m)
                if m.name not in results or not m.isfile():
                    raise PodreproError(f"the VM sent {m.name!r}, not the results file: refused")
                f = tf.extractfile(m)
                target = root / m.name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(f.read() if f else b"")
    from podrepro import results as res

    counted = res.count(kind, root / results[0])
    if counted.ran == 0:
        why = f"--filter {filt!r} matched no test" if filt else "the harness wrote no results"
        raise PodreproError(f"no test ran on {alias} in the VM: {why}", hint="see the output above")
    from podrepro.testrun import tally

    say(tally(counted, rc, alias))
    return counted
