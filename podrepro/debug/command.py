"""``podrepro debug``: compose config, images, binfmt and the session (``session``)."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from podrepro.arches import lookup
from podrepro.errors import UsageError
from podrepro.reporting import Confirm, Notify, ReporterFor


def debug(arch_name: str, program: Sequence[str], gdb_options: Sequence[str], *, core: Path | None = None,
          profile: str | None = None, src: Path | None = None, env: Sequence[str] = (), cpu: str | None = None,
          suite: str | None = None, mirror: str | None = None, image: str | None = None,
          private_binfmt: bool = False, confirm: Confirm | None, progress: ReporterFor,
          notify: Notify | None = None) -> int:
    """Run PROGRAM under qemu's gdbstub in the ARCH container with gdb-multiarch attached, or
    (``core``) open a core of an emulated crash; gdb's exit code."""
    from podrepro import config, privbinfmt, runner, workflows
    from podrepro.debug import cores, session, tools
    from podrepro.engine import commands, process
    from podrepro.engine.podman import Podman
    from podrepro.images.target import target
    from podrepro.paths import get_paths

    arch = lookup(arch_name)
    if not arch.emulated:
        raise UsageError(f"{arch.alias} runs natively here, without qemu, so podrepro debug has no gdbstub to attach to",
                         hint=f"use gdb in 'podrepro shell {arch.alias}'")
    say = notify or (lambda line: None)
    cfg = config.resolve({"profile": profile, "suite": suite, "mirror": mirror, "cpu": cpu,
                          "binfmt_mode": "private" if private_binfmt else None}, src=src)
    for line in cfg.notices:
        say(line)
    t = target(cfg, arch.alias, None)
    root = cfg.project_root
    workdir = runner.workdir_for(root, Path.cwd())
    note: dict[str, object] = {}
    if core is not None:
        core = core.resolve()
        if not core.is_file():
            raise UsageError(f"--core {core}: no such file", hint="see .podrepro/cores/ in the project")
        note = cores.note_of(core)
        if not program and not isinstance(note.get("program"), str):
            raise UsageError(f"podrepro does not know which program left {core.name}",
                             hint=f"name it: podrepro debug {arch.alias} --core FILE -- PROGRAM")
    elif not program:
        raise UsageError("debug needs a program: podrepro debug ARCH [GDB OPTIONS] -- PROGRAM [ARGS...]",
                         hint=f"to open a core: podrepro debug {arch.alias} --core FILE")
    paths = get_paths()
    paths.check_private()
    eng = Podman()
    tag = image or t.recipe.tag
    noted = note.get("image")
    if image is None and isinstance(noted, str) and eng.image_exists_cli(noted):
        tag = noted  # the very image the program crashed in
    if image is not None and not eng.image_exists_cli(image):
        raise UsageError(f"--image {image}: no such image", hint="see 'podrepro image ls'")
    trec = tools.recipe(cfg, t.base.suite)
    with eng:  # the API service starts only if an image has to be built
        if not eng.image_exists_cli(tag):
            workflows.ensure_image(cfg, eng, t, progress=progress)
        if not eng.image_exists_cli(trec.tag):
            say("building the debugger's image (gdb-multiarch for this host, once)")
            with workflows.builder(cfg, eng, progress=progress) as b:
                b.ensure(trec)
    selinux = runner.selinux_enforcing()
    tty = workflows.stdin_is_tty() and workflows.stdout_is_tty()
    uid, gid = os.getuid(), os.getgid()
    tmp = Path(tempfile.mkdtemp(prefix="podrepro-debug-"))
    try:
        script = tmp / "podrepro-gdb.py"
        script.write_text(session.GDB_SCRIPT)
        script.chmod(0o644)
        tmp.chmod(0o755)
        volumes = [f"{root}:{root}:ro", f"{script}:{session.SCRIPT_IN}:ro"]
        common: dict[str, Any] = {
            "platform": tools.HOST_PLATFORM, "interactive": True, "tty": tty, "init": True,
            "selinux_label_disable": selinux, "labels": {"io.podrepro.debug": "1"}, "env": {"HOME": "/tmp"},
            "workdir": str(workdir)}
        if core is not None:
            if root not in core.parents:
                volumes.append(f"{core}:{core}:ro")
            prog = program[0] if program else str(note["program"])
            argv = commands.run_argv(
                eng.binary, trec.tag, session.gdb_command(session.program_file(prog, root, workdir), str(core),
                                                          gdb_options, attach=False),
                network="none", keep_id=True, volumes=volumes, extra=commands.image_mount_args(tag, session.SYSROOT),
                **common)
            return process.foreground(argv)

        binfmt_mode = workflows.binfmt_mode_for(cfg, arch)
        if binfmt_mode == "host":
            workflows.check_binfmt(arch, confirm)  # the program's children run through binfmt_misc
        qemu = privbinfmt.find_qemu(arch)
        name = f"podrepro-debug-{arch.alias}-{os.getpid()}-{secrets.token_hex(3)}"
        mult = float(cfg["timeout_multiplier"])
        vals = runner.placeholders(arch, t.profile, root, mult)
        spec = runner.RunSpec(
            arch=arch, image=tag, command=tuple(session.program_command(program[0], program[1:])), project_root=root,
            workdir=workdir, env=runner.parse_env([*cfg["env"], *env], os.environ), cpu=cfg["cpu"], selinux=selinux,
            name=name, extra_args=(
                "--volume", f"{qemu}:{session.QEMU_IN}:ro",
                *(privbinfmt.prepare(arch, paths, user=(uid, gid)) if binfmt_mode == "private" else ())))
        prog_argv = runner.run_argv(eng.binary, spec, runner.container_env(spec, t.profile, vals, mult))
        gdb_argv = commands.run_argv(
            eng.binary, trec.tag, session.gdb_command(session.program_file(program[0], root, workdir), None,
                                                      gdb_options, attach=True),
            network=None, volumes=volumes,
            extra=[*commands.joined_args(name, user=(uid, gid)), *commands.image_mount_args(tag, session.SYSROOT)],
            **common)
        return session.run(eng.binary, prog_argv, gdb_argv, name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
