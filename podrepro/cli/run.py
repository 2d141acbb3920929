"""podrepro shell | run | build | test ARCH — thin: parse, call workflows.reproduce, which execs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

ArchArg = Annotated[str, typer.Argument(help="Architecture (arm, mips, arm64, ...; any spelling).", show_default=False)]
ProfileOpt = Annotated[str | None, typer.Option("--profile", "-p", help="Profile (generic, jsc, base, or one from podrepro.toml).")]
SrcOpt = Annotated[Path | None, typer.Option("--src", help="Project root to mount (default: podrepro.toml's dir, else git top level, else cwd).")]
NetOpt = Annotated[bool | None, typer.Option("--network/--no-network", help="Give the container a private network (off by default).")]
HostNetOpt = Annotated[bool, typer.Option("--host-network", help="Share the host's network namespace (command line only).")]
EnvOpt = Annotated[list[str] | None, typer.Option("--env", "-e", help="NAME=VALUE to set, or NAME to pass through (repeatable).")]
CpuOpt = Annotated[str | None, typer.Option("--cpu", help="Emulated CPU model (QEMU_CPU), e.g. cortex-a7, 24Kf.")]
TmOpt = Annotated[float | None, typer.Option("--timeout-multiplier", help="Scale test timeouts for emulation (default from config: 4).")]
SuiteOpt = Annotated[str | None, typer.Option("--suite", help="Debian suite of the base image.")]
MirrorOpt = Annotated[str | None, typer.Option("--mirror", help="Debian mirror URL if the image has to be built.")]
ImageOpt = Annotated[str | None, typer.Option("--image", help="Run in this podrepro image (a tag from 'podrepro image ls') instead of the profile's.")]
CoreOpt = Annotated[bool, typer.Option("--core", help="Let emulated programs that crash dump core; podrepro keeps the cores in .podrepro/cores/ARCH/ (open one: podrepro debug ARCH --core FILE). Same as core = true.")]
StraceOpt = Annotated[bool, typer.Option("--strace", help="Trace the emulated syscalls (QEMU_STRACE) into .podrepro/traces/ARCH/, one file per process, with a summary of what qemu-user does not implement.")]
RepeatOpt = Annotated[int | None, typer.Option("--repeat", min=1, help="Run N times, each in a fresh container (after one build), and report the failure rate with its 95% interval.")]
UntilFailOpt = Annotated[bool, typer.Option("--until-fail", help="Stop at the first failing run (at most --repeat N runs, else 100).")]
JobsOpt = Annotated[int | None, typer.Option("--jobs", "-j", min=1, help="With --repeat: runs at once; with several architectures: architectures at once (default: the cores). At most the number of cores.")]
JunitOpt = Annotated[Path | None, typer.Option("--junit", help="Several architectures: write JUnit XML to FILE, one testsuite per architecture.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Several architectures: print the summary as JSON.")]
GitOpt = Annotated[bool, typer.Option("--writable-git", help="Mount the project's .git read-write (default: read-only, so nothing inside can plant a hook that runs on the host).")]
CrossOpt = Annotated[bool | None, typer.Option("--cross/--emulated", help="Build natively with Debian's cross toolchain in a cross image (tests still run emulated), or emulated in the ARCH container. Default: the build_mode setting, else the profile's, else what the build tree was configured with, else emulated.", show_default=False)]
ConnOpt = Annotated[str | None, typer.Option("--connection", help="Run on this podman system connection (ssh) instead of here: the project is synced there, the image sent, the build directory brought back. Several architectures: a,b,local spreads them. Same as connection = \"NAME\" in your config.")]
SystemOpt = Annotated[bool, typer.Option("--system", help="A second opinion: boot the image as a full-system VM of ARCH with Debian's kernel (qemu-system; no qemu-user), the project inside it. Slower; the kernel is the target's.")]
SystemMemOpt = Annotated[int | None, typer.Option("--system-memory", min=128, help="With --system: the VM's memory in MiB (default per architecture).")]
PrivOpt = Annotated[bool, typer.Option("--private-binfmt", help="Register qemu in this container's own binfmt_misc (Linux >= 6.7): no host handler, no root needed. Same as binfmt_mode = \"private\".")]

# run: options may come before or after ARCH; anything podrepro does not know, and everything
# after "--", is the command (use "--" when the command has options podrepro also has, like -e).
PASS = {"allow_extra_args": True, "ignore_unknown_options": True, "allow_interspersed_args": True}
# build/test: podrepro's options anywhere before "--"; after it, extra arguments for the program.
EXTRA = {"allow_extra_args": True, "ignore_unknown_options": False, "allow_interspersed_args": True}


def register(app: typer.Typer) -> None:
    @app.command("shell")
    def shell(arch: ArchArg, profile: ProfileOpt = None, src: SrcOpt = None, network: NetOpt = None,
              host_network: HostNetOpt = False, env: EnvOpt = None, cpu: CpuOpt = None,
              suite: SuiteOpt = None, mirror: MirrorOpt = None,
              private_binfmt: PrivOpt = False, image: ImageOpt = None, writable_git: GitOpt = False,
              connection: ConnOpt = None) -> None:
        """Interactive shell in the ARCH container, in the directory you are in."""
        _reproduce("shell", arch, [], locals())

    @app.command("run", context_settings=PASS)
    def run(ctx: typer.Context, arch: ArchArg, profile: ProfileOpt = None, src: SrcOpt = None,
            network: NetOpt = None, host_network: HostNetOpt = False, env: EnvOpt = None, cpu: CpuOpt = None,
            suite: SuiteOpt = None, mirror: MirrorOpt = None, private_binfmt: PrivOpt = False, image: ImageOpt = None, writable_git: GitOpt = False,
            core: CoreOpt = False, strace: StraceOpt = False, repeat: RepeatOpt = None,
            until_fail: UntilFailOpt = False, jobs: JobsOpt = None, junit: JunitOpt = None,
            as_json: JsonOpt = False, connection: ConnOpt = None, system: SystemOpt = False,
            system_memory: SystemMemOpt = None,
            tmpfs_tree: Annotated[bool, typer.Option("--tmpfs-tree", help="Run on a copy of the project in a tmpfs (small directory offsets: qemu-user's readdir artefact on ext4); changes to the tree are not kept.")] = False) -> None:
        """Run a command in the ARCH container: podrepro run [OPTIONS] ARCH [--] CMD [ARGS...].

        Everything after "--" is the command, passed as is (never through a shell). The
        command's exit code is podrepro's."""
        if _is_matrix(arch, junit, as_json):
            raise typer.Exit(_matrix("run", arch, ctx.args, locals()))
        if system:
            raise typer.Exit(_system("run", arch, _strip(ctx.args), locals()))
        raise typer.Exit(_reproduce("run", arch, _strip(ctx.args), locals(), core=core, strace=strace,
                                    series=_series(repeat, until_fail, jobs), tmpfs_tree=tmpfs_tree))

    @app.command("build", context_settings=EXTRA)
    def build(ctx: typer.Context, arch: ArchArg, profile: ProfileOpt = None, src: SrcOpt = None,
              network: NetOpt = None, host_network: HostNetOpt = False, env: EnvOpt = None, cpu: CpuOpt = None,
              suite: SuiteOpt = None, mirror: MirrorOpt = None,
              private_binfmt: PrivOpt = False, image: ImageOpt = None, writable_git: GitOpt = False,
              cross: CrossOpt = None, core: CoreOpt = False, jobs: JobsOpt = None, junit: JunitOpt = None,
              as_json: JsonOpt = False, connection: ConnOpt = None) -> None:
        """Run the profile's build command in the ARCH container, or natively with --cross (extra args after --)."""
        if _is_matrix(arch, junit, as_json):
            raise typer.Exit(_matrix("build", arch, ctx.args, locals()))
        if jobs is not None:
            from podrepro.errors import UsageError

            raise UsageError("--jobs with build: it runs several architectures at once",
                             hint="name them: podrepro build arm,mips --jobs 2")
        raise typer.Exit(_reproduce("build", arch, _strip(ctx.args), locals(), build_mode_flag=_mode(cross), core=core))

    @app.command("test", context_settings=EXTRA)
    def test(ctx: typer.Context, arch: ArchArg,
             filter_: Annotated[str | None, typer.Option("--filter", "-f", help="Only tests matching PATTERN (passed to the test program as data).")] = None,
             profile: ProfileOpt = None, src: SrcOpt = None, network: NetOpt = None,
             host_network: HostNetOpt = False, env: EnvOpt = None, cpu: CpuOpt = None,
             timeout_multiplier: TmOpt = None, suite: SuiteOpt = None, mirror: MirrorOpt = None,
             private_binfmt: PrivOpt = False, image: ImageOpt = None, writable_git: GitOpt = False,
             no_build: Annotated[bool, typer.Option("--no-build", help="Run the tests as the tree is: skip the build that brings it up to date first.")] = False,
             cross: CrossOpt = None, core: CoreOpt = False, strace: StraceOpt = False, repeat: RepeatOpt = None,
             until_fail: UntilFailOpt = False, jobs: JobsOpt = None, junit: JunitOpt = None,
             as_json: JsonOpt = False, connection: ConnOpt = None, system: SystemOpt = False,
             system_memory: SystemMemOpt = None,
             native_harness: Annotated[bool | None, typer.Option("--native-harness/--emulated-harness", help="Run the test driver natively in the cross image (only the target's binaries under qemu), or all of it emulated. Default: the test_mode setting, else the profile's, else emulated.", show_default=False)] = None) -> None:
        """Build what is out of date, then run the profile's tests in the ARCH container: podrepro test [OPTIONS] ARCH [-- EXTRA...].

        Exits with the test program's code; exits 1 when no test ran (a --filter that matches
        nothing, a tree without tests)."""
        if _is_matrix(arch, junit, as_json):
            raise typer.Exit(_matrix("test", arch, ctx.args, locals()))
        if system:
            raise typer.Exit(_system("test", arch, _strip(ctx.args), locals()))
        rc = _reproduce("test", arch, _strip(ctx.args), locals(), filt=filter_,
                        timeout_multiplier=timeout_multiplier, no_build=no_build, build_mode_flag=_mode(cross),
                        native_harness=native_harness, core=core, strace=strace,
                        series=_series(repeat, until_fail, jobs))
        raise typer.Exit(rc)


# the options shell/run/build/test share, passed on by name from each command's locals()
_COMMON = ("profile", "src", "network", "host_network", "env", "cpu", "suite", "mirror", "private_binfmt", "image",
           "writable_git", "connection")


def _reproduce(mode: str, arch: str, args: list[str], opts: dict[str, Any], **more: Any) -> int:
    from podrepro import workflows
    from podrepro.cli.output import Progress, confirm, info

    kw = {k: opts[k] for k in _COMMON}
    kw["env"] = kw["env"] or []
    return workflows.reproduce(mode, arch, args, confirm=confirm, progress=Progress,
                               notify=lambda line: info(f"podrepro: {line}"), **kw, **more)


def _system(mode: str, arch: str, args: list[str], opts: dict[str, Any]) -> int:
    """run/test --system: what else was asked that a VM run does not do is refused in one line."""
    from podrepro.cli.output import Progress, confirm, echo, info
    from podrepro.errors import UsageError
    from podrepro.system.command import run_system

    for name, flag in (("image", "--image"), ("connection", "--connection"), ("core", "--core"), ("strace", "--strace"),
                       ("repeat", "--repeat"), ("until_fail", "--until-fail"), ("private_binfmt", "--private-binfmt"),
                       ("host_network", "--host-network"), ("tmpfs_tree", "--tmpfs-tree"), ("cpu", "--cpu"),
                       ("no_build", "--no-build"), ("cross", "--cross"), ("native_harness", "--native-harness"),
                       ("network", "--network")):
        if opts.get(name):
            raise UsageError(f"{flag} with --system: not supported (the VM has its own kernel, no network and "
                             "no host files)", hint=f"drop {flag}")
    return run_system(mode, arch, args, profile=opts.get("profile"), src=opts.get("src"), env=opts.get("env") or [],
                      filt=opts.get("filter_"), timeout_multiplier=opts.get("timeout_multiplier"),
                      memory=opts.get("system_memory"), confirm=confirm, progress=Progress,
                      say=lambda line: info(f"podrepro: {line}"), show=echo).exit_status


def _is_matrix(arch: str, junit: Path | None, as_json: bool) -> bool:
    """Several architectures (``arm,mips``, ``all``), or a matrix's outputs asked of one."""
    from podrepro.matrix.plan import is_matrix

    return is_matrix(arch) or junit is not None or as_json


def _matrix(mode: str, spec: str, args: list[str], opts: dict[str, Any]) -> int:
    from podrepro.cli.matrix import run_matrix

    return run_matrix(mode, spec, _strip(args), opts)


def _series(repeat: int | None, until_fail: bool, jobs: int | None) -> Any:
    """A repeat request when --repeat or --until-fail asks for one (else None: one run)."""
    if repeat is None and not until_fail:
        if jobs is not None:
            from podrepro.errors import UsageError

            raise UsageError("--jobs runs repeats at once: it needs --repeat N or --until-fail")
        return None
    from podrepro.triage.repeat import Request

    return Request(count=repeat or 1, until_fail=until_fail, jobs=jobs or 1)


def _mode(cross: bool | None) -> str | None:
    return None if cross is None else ("cross" if cross else "emulated")


def _strip(args: list[str]) -> list[str]:
    return args[1:] if args and args[0] == "--" else list(args)
