"""What the CLI commands do, composed from config, images, binfmt and the engine.

Each function takes resolved inputs and returns a result (or execs); the CLI prints.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from podrepro.arches import Arch, lookup
from podrepro.config import Config
from podrepro.engine.podman import Podman
from podrepro.errors import UsageError
from podrepro.images.index import Index
from podrepro.images.recipe import resolve_mirror
from podrepro.images.target import Target, target
from podrepro.paths import Paths, get_paths
from podrepro.reporting import Confirm, Notify, ReporterFor

if TYPE_CHECKING:
    from podrepro.binfmt.analysis import ArchReport
    from podrepro.images.build import Builder, BuildResult
    from podrepro.triage.repeat import Request


@contextlib.contextmanager
def builder(cfg: Config, engine: Podman, paths: Paths | None = None, *,
            progress: ReporterFor) -> Iterator[Builder]:
    """A Builder for ``cfg``; ``progress`` makes the reporter for the progress setting."""
    from podrepro.images.build import Builder

    mirror, _ = resolve_mirror(cfg["mirror"])
    yield Builder(engine, paths or get_paths(), mirror=mirror, reporter=progress(cfg["progress"]),
                  verbose=bool(os.environ.get("PODREPRO_VERBOSE")),
                  private_binfmt=lambda arch: binfmt_mode_for(cfg, arch) == "private")


def ensure_image(cfg: Config, engine: Podman, t: Target, rebuild: bool = False, *,
                 progress: ReporterFor) -> BuildResult:
    with builder(cfg, engine, progress=progress) as b:
        return b.ensure(t.recipe, profile=t.profile, base=t.layer_base, source=t.source, rebuild=rebuild)


def ensure_cross_image(cfg: Config, engine: Podman, t: Target, rebuild: bool = False, *,
                       progress: ReporterFor) -> BuildResult:
    """The cross image of ``t``'s profile for ``t.arch`` (hybrid builds), built if missing."""
    from podrepro.images.target import cross_target

    host_base, xrec = cross_target(cfg, t.arch, t.profile, t.base.suite)
    with builder(cfg, engine, progress=progress) as b:
        return b.ensure(xrec, base=host_base, rebuild=rebuild)


def stdin_is_tty() -> bool:
    try:
        return sys.stdin.isatty()
    except (ValueError, AttributeError):
        return False


def stdout_is_tty() -> bool:
    try:
        return sys.stdout.isatty()
    except (ValueError, AttributeError):
        return False


def to_jsonable(r: BuildResult) -> dict[str, Any]:
    return {"tag": r.tag, "built": r.built, "seconds": round(r.seconds, 3),
            "log": str(r.log) if r.log else None, "seeded_from": r.seeded_from}


def check_binfmt(arch: Arch, confirm: Confirm | None) -> ArchReport | None:
    """Stop early, with the fix, when the host cannot run ``arch`` binaries; else the
    ``binfmt.analysis.ArchReport`` that says which handler will run them (None for a native arch).
    On a terminal, ``confirm`` is asked whether to register a handler instead."""
    if not arch.emulated:
        return None
    from podrepro.binfmt.register import ensure_handler

    return ensure_handler(arch, confirm=confirm if stdin_is_tty() else None)


def gate_binfmt(cfg: Config, arch: Arch, confirm: Confirm | None) -> None:
    """``check_binfmt`` when the host's handler is what runs ``arch`` (not a private one)."""
    if binfmt_mode_for(cfg, arch) == "host":
        check_binfmt(arch, confirm)


def binfmt_mode_for(cfg: Config, arch: Arch) -> str:
    """"host" (the host's binfmt handler runs ``arch``) or "private" (each container, build step
    and bootstrap registers qemu in its own binfmt_misc): the ``binfmt_mode`` setting, with
    "auto" = the host's handler when it works."""
    from podrepro import privbinfmt

    if not arch.emulated:
        return "host"
    return privbinfmt.resolve_mode(cfg["binfmt_mode"], host_usable=lambda: host_handler_usable(arch))


def host_handler_usable(arch: Arch) -> bool:
    """The host's binfmt_misc can run ``arch`` (the same reading ensure_handler does; no subprocess)."""
    from podrepro.binfmt.analysis import analyze
    from podrepro.binfmt.state import read_state
    from podrepro.findings import detect_distro

    return analyze(read_state(), arch, detect_distro()).usable


def reproduce(
    mode: str,
    arch_name: str,
    args: list[str],
    *,
    profile: str | None = None,
    src: Path | None = None,
    network: bool | None = None,
    host_network: bool = False,
    env: list[str] | None = None,
    cpu: str | None = None,
    suite: str | None = None,
    mirror: str | None = None,
    filt: str | None = None,
    timeout_multiplier: float | None = None,
    private_binfmt: bool = False,
    image: str | None = None,
    save_plan: bool = False,
    no_build: bool = False,
    writable_git: bool = False,
    build_mode_flag: str | None = None,
    native_harness: bool | None = None,
    core: bool = False,
    strace: bool = False,
    series: Request | None = None,
    tmpfs_tree: bool = False,
    connection: str | None = None,
    notify: Notify | None = None,
    confirm: Confirm | None,
    progress: ReporterFor,
) -> int:
    """shell/run/build/test: ensure binfmt + image, then exec podman (never returns on success).

    ``test`` does not exec: it first brings the build up to date with the profile's build
    command (unless ``no_build``), runs the tests, counts what ran from the harness's results
    file and returns the exit code; "no test ran" is an error. ``notify`` gets one-line notes
    for the user (a build tree being reconfigured, the tests' tally); ``confirm`` is asked
    whether to register a missing binfmt handler; ``progress`` shows an image build.

    ``core``/``strace`` (``podrepro.debug.capture``): keep the cores of emulated crashes, trace
    the run's or tests' syscalls; the command then runs in the foreground, not exec'd.

    ``series`` (``--repeat``, ``triage``; ``podrepro.triage.repeat``): run or test N times in fresh
    containers after one build, and report the failure rate.

    ``connection`` (``--connection NAME``, or the ``connection`` setting): run on that podman
    system connection's engine (``podrepro.remote``).

    ``save_plan`` (``run ARCH -- CMD`` with no options): save the argv as a run plan when every
    input it came from can be fingerprinted (see ``runplan``)."""
    from podrepro import config, privbinfmt, runner, runplan, testrun
    from podrepro.engine import process, storage
    from podrepro.engine.podman import Podman

    arch = lookup(arch_name)
    if mode == "run" and not args:
        raise UsageError("run needs a command: podrepro run ARCH -- CMD [ARGS...]",
                         hint=f"for an interactive shell use 'podrepro shell {arch.alias}'")
    cfg = config.resolve({"profile": profile, "suite": suite, "mirror": mirror, "network": network,
                          "cpu": cpu, "timeout_multiplier": timeout_multiplier,
                          "binfmt_mode": "private" if private_binfmt else None, "build_mode": build_mode_flag,
                          "test_mode": None if native_harness is None else
                          ("native-harness" if native_harness else "emulated"), "core": core or None,
                          "connection": connection}, src=src)
    say = notify or (lambda line: None)
    for line in cfg.notices:
        say(line)
    if cfg["core"]:
        from podrepro.debug.cores import ulimit_args

        ulimit_args()  # a hard core-file limit of 0: one line now, before any work
    t = target(cfg, arch.alias, None)
    root = cfg.project_root
    mult = float(cfg["timeout_multiplier"])
    rem = None
    if cfg["connection"] not in ("", "local"):
        from podrepro.remote import run as remote

        rem = remote.start(cfg["connection"], arch, {
            "--image": bool(image), "--repeat": series is not None, "--core": bool(cfg["core"]), "--strace": strace,
            "--private-binfmt": private_binfmt, "--cross": cfg["build_mode"] == "cross",
            "--native-harness": cfg["test_mode"] == "native-harness"}, say)
    # the commands name the tree where they run: there, on a remote engine
    vals = runner.placeholders(arch, t.profile, Path(str(rem.tree(root))) if rem else root, mult)
    builds = mode == "build" or (mode == "test" and not no_build) or (series is not None and series.build)
    build_mode = "emulated"
    if builds and t.profile.build_dir and t.profile.build and not image:
        from podrepro import buildtree, hybrid

        build_mode, why = hybrid.resolve_mode(cfg["build_mode"], t.profile,
                                              buildtree.build_path(root, vals["build_dir"]))
        if build_mode == "cross" and why != "build_mode":
            say(f"building with the cross toolchain ({why}; --emulated for an emulated build)")
    native_tests = mode == "test" and not image and (
        cfg["test_mode"] == "native-harness" or (cfg["test_mode"] == "auto" and t.profile.test_mode == "native-harness"))
    tc = None
    if build_mode == "cross" or native_tests:
        from podrepro import cross

        tc = cross.toolchain(arch, t.base.suite)  # none for this arch and suite: one line, before any work
    if native_tests:
        say(f"the test harness runs natively in the cross image; only {arch.alias} binaries run under qemu "
            "(test_mode native-harness)")

    binfmt_mode = binfmt_mode_for(cfg, arch) if rem is None else "remote"
    report = check_binfmt(arch, confirm) if binfmt_mode == "host" else None
    paths = get_paths()
    paths.check_private()

    tag = image or t.recipe.tag
    eng = Podman()  # starts no API service unless the image has to be built (closed below then)
    present = storage.storage_lists_image(tag)
    plannable = save_plan and mode == "run" and binfmt_mode == "host" and not image and present is True
    if present is None:
        present = eng.image_exists_cli(tag)
    if not present and image:
        raise UsageError(f"--image {image}: no such image", hint="see 'podrepro image ls'")
    # the target's own image runs shells, commands, emulated builds and emulated tests; a cross
    # build whose tests run in the native harness needs none of it (the cross image has the
    # target's libraries)
    needs_target_image = (mode in ("shell", "run") or (builds and build_mode == "emulated")
                          or (mode == "test" and not native_tests))
    if rem is not None:
        def build_here() -> None:
            with eng:
                ensure_image(cfg, eng, t, progress=progress)

        remote.ensure_image(rem, eng.binary, tag, bool(present), build_here, say)
    elif not present and needs_target_image:
        with eng:
            ensure_image(cfg, eng, t, progress=progress)
    elif present:
        with contextlib.suppress(OSError):
            Index(paths).touch(tag)
    xtag = None
    if tc is not None:
        from podrepro.images.target import cross_target

        host_base, xrec = cross_target(cfg, arch, t.profile, t.base.suite)
        xtag = xrec.tag
        if not eng.image_exists_cli(xtag):
            with eng, builder(cfg, eng, progress=progress) as b:
                b.ensure(xrec, base=host_base)

    if mode == "shell":
        command = [t.profile.shell] if t.profile.shell else ["/bin/sh"]
        workdir = runner.workdir_for(root, Path.cwd())
    elif mode == "run":  # triage's commands name each comparator's build tree with {build_dir}
        command = runner.substitute(args, vals) if series is not None and series.substitute else args
        workdir = runner.workdir_for(root, Path.cwd())
    elif mode == "build":
        command = runner.build_command(t.profile, vals, args)
        workdir = root
    else:
        command = runner.test_command(t.profile, vals, filt, args, mult)
        workdir = root
    ccache_dir = None
    if t.profile.ccache and rem is None:
        ccache_dir = paths.ccache(arch.alias, cfg.project_root)
        ccache_dir.mkdir(parents=True, exist_ok=True)
        paths.ensure_cache()
    if mode in ("build", "test") and t.profile.build_dir and rem is None:
        from podrepro import buildtree

        if builds:
            now = buildtree.TreeFor(arch.alias, xtag or tag, build_mode)
            for note in buildtree.prepare(root, vals["build_dir"], now):
                say(note)
        else:
            buildtree.build_path(root, vals["build_dir"]).mkdir(parents=True, exist_ok=True)
    net = "host" if host_network else ("private" if cfg["network"] else "none")
    tty = stdin_is_tty() and stdout_is_tty()
    spec = runner.RunSpec(
        arch=arch, image=tag, command=tuple(command), project_root=root, workdir=workdir, network=net,
        env=runner.parse_env([*cfg["env"], *(env or [])], os.environ), tty=tty,
        interactive=(mode == "shell") or stdin_is_tty(), ccache_dir=ccache_dir, cpu=cfg["cpu"],
        selinux=runner.selinux_enforcing(),
        # keep-id's default user is the host user: the shim starts as root and drops to it
        extra_args=tuple(privbinfmt.prepare(arch, paths, user=(os.getuid(), os.getgid())))
        if binfmt_mode == "private" else (),
        git_writable=writable_git, tmpfs_tree=tmpfs_tree,
    )
    if rem is not None:
        from podrepro.arches import ARCHES

        keep = vals["build_dir"] if t.profile.build_dir else None
        remote.upload(rem, root, [runner.placeholders(a, t.profile, root, mult)["build_dir"] for a in ARCHES], keep, say)
        there = Path(vals["src"])
        spec = replace(spec, project_root=there, workdir=there / workdir.relative_to(root), selinux=rem.host.selinux,
                       remote=True)
    if tmpfs_tree:
        say("running on a copy of the project in a tmpfs (--tmpfs-tree): small directory offsets; "
            "what the command changes in the tree is not kept")
    cap = None
    if cfg["core"] or strace:
        from podrepro.debug import capture

        cap = capture.start(root, arch.alias, core=bool(cfg["core"]), trace=strace and mode in ("run", "test"))
        spec = replace(spec, extra_args=(*spec.extra_args, *cap.extra_args))
    tspec = replace(spec, env={**spec.env, **cap.env}) if cap else spec  # the traced command's
    argv = runner.run_argv(eng.binary, tspec, runner.container_env(tspec, t.profile, vals, mult))
    build_argv = None
    if build_mode == "cross":
        from podrepro import hybrid

        assert tc is not None and xtag is not None
        xccache = None
        if ccache_dir is not None:  # per mode too: objects of the cross gcc are not the image gcc's
            xccache = paths.ccache(f"{arch.alias}-cross", root)
            xccache.mkdir(parents=True, exist_ok=True)
        build_argv = hybrid.build_argv(eng.binary, spec, t.profile, tc, xtag, vals,
                                       args if mode == "build" else [], mult, xccache)
        if present or needs_target_image:  # it is there: say if its gcc is not the cross gcc's version
            mismatch = hybrid.compiler_mismatch(eng, Index(paths), xtag, tag, arch, tc)
            if mismatch:
                say(mismatch)
    elif builds and mode != "build":
        build_argv = runner.run_argv(
            eng.binary, replace(spec, command=tuple(runner.build_command(t.profile, vals, []))),
            runner.container_env(spec, t.profile, vals, mult))
    if rem is not None:
        back = remote.after(rem, root, vals["build_dir"] if t.profile.build_dir else None, say)
        build_argv = rem.wrap(build_argv) if build_argv is not None else None
        if mode == "test":
            return testrun.run_tests(build_argv, rem.wrap(argv), t.profile, vals, root, arch, filt, say, after=back)
        try:
            return process.foreground(build_argv if mode == "build" and build_argv is not None else rem.wrap(
                [a for a in argv if a != "-t"] if mode == "shell" and not stdin_is_tty() else argv))
        finally:
            back()
    if mode == "build" and build_argv is not None:
        if cap is None:
            process.exec_(build_argv)
        argv = build_argv
    if native_tests:
        from podrepro import hybrid

        assert xtag is not None
        argv = hybrid.harness_argv(eng.binary, tspec, t.profile, xtag, vals, mult)
    if series is not None and mode in ("run", "test"):
        from podrepro.triage import flow

        def argv_for(i: int) -> list[str]:
            v = {**vals, "run": f"-{i}"}
            s = replace(tspec, command=tuple(runner.test_command(t.profile, v, filt, args, mult)) if mode == "test"
                        else tspec.command)
            if native_tests:
                from podrepro import hybrid

                return hybrid.harness_argv(eng.binary, s, t.profile, str(xtag), v, mult)
            return runner.run_argv(eng.binary, s, runner.container_env(s, t.profile, v, mult))

        cpu_label = f" (cpu {cfg['cpu']})" if cfg["cpu"] else ""
        return flow.repeat(series, build=build_argv, argv_for=argv_for, profile=t.profile if mode == "test" else None,
                           vals=vals, root=root, arch=arch.alias, label=series.label or arch.alias + cpu_label,
                           trace_dir=cap.trace_dir if cap else None, say=say)
    if cap is not None and mode != "shell":
        from podrepro import buildtree

        tree = buildtree.build_path(root, vals["build_dir"]) if mode != "run" and t.profile.build_dir else workdir
        try:
            return testrun.run_tests(build_argv, argv, t.profile, vals, root, arch, filt, say) if mode == "test" \
                else process.foreground(argv)
        finally:
            cap.finish([tree], command=command, workdir=workdir, image=tag, say=say)
    if mode == "test":
        return testrun.run_tests(build_argv, argv, t.profile, vals, root, arch, filt, say)
    if mode == "shell" and not stdin_is_tty():
        # no TTY: still a shell, reading commands from stdin
        argv = [a for a in argv if a != "-t"]
    watch: list[tuple[str, str]] = []
    if mode == "run" and not stdout_is_tty() and rem is None:  # output podrepro can read
        from podrepro.fidelity.host import watch_for

        watch = watch_for(arch, root)
    if plannable:
        store = storage.storage_files()
        store_files = [store[0], *store[1]] if store else []
        names = [item.partition("=")[0] for item in cfg["env"]]
        runplan.save(arch_name, argv[:len(argv) - len(command)],
                     runplan.deps_for(cfg, t, report, store_files, paths, ccache_dir), names,
                     touch=str(Index(paths).stamp(tag)), watch=watch)
    if watch:
        return runplan.run_watched(argv, watch, how="watch")
    process.exec_(argv)
