"""Base images into a temporary tag: bootstrapped by mmdebstrap (seeded from an earlier base when
one fits) into a tar that ``podman import`` reads, or imported from a rootfs tarball; or pulled
from a registry and re-labelled. The Builder verifies the result and gives it its real tag."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from podrepro import privbinfmt
from podrepro.engine import bootstrap, commands, hostdpkg, process
from podrepro.engine.podman import podman_tmpdir, remove_tree
from podrepro.errors import EngineError, PodreproError, UsageError
from podrepro.images.progress import BootstrapProgress
from podrepro.images.recipe import BaseSource, Recipe
from podrepro.images.seed import hook_seeded, open_seed

if TYPE_CHECKING:
    from podrepro.images.build import Builder


class _Transient(Exception):
    def __init__(self, line: str) -> None:
        super().__init__(line)
        self.line = line


def bootstrap_base(b: Builder, recipe: Recipe, source: BaseSource, tmp: str, log: Path,
                   seed: bool = True) -> str | None:
    """Bootstrap (see _bootstrap_once), again after a transient failure; the seed it used."""
    from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

    attempts = int(os.environ.get("PODREPRO_BOOTSTRAP_ATTEMPTS", "3"))

    def transient(e: BaseException) -> bool:
        return isinstance(e, _Transient)

    @retry(retry=retry_if_exception(transient), stop=stop_after_attempt(attempts),
           wait=wait_exponential(multiplier=2, min=2, max=30), reraise=True)
    def attempt() -> str | None:
        with contextlib.suppress(Exception):
            b.engine.remove_image(tmp, force=True)
        return _bootstrap_once(b, recipe, source, tmp, log, seed)

    try:
        return attempt()
    except _Transient as e:
        raise EngineError(f"bootstrap of {recipe.arch.debian} {recipe.suite} failed after {attempts} attempts: "
                          f"{e.line}", hint=f"mirror trouble? full log: {log}; try --mirror URL") from None


def _bootstrap_once(b: Builder, recipe: Recipe, source: BaseSource, tmp: str, log: Path,
                    seed: bool = True) -> str | None:
    """Bootstrap (or import a rootfs) into the image ``tmp``; the tag of the earlier base the
    hook seeded the root filesystem from, if it did."""
    arch = recipe.arch
    labels = recipe.labels()
    with open(log, "ab") as lf, contextlib.ExitStack() as cleanup:
        if source.kind == "rootfs":
            assert source.value is not None
            b.reporter.step("import", f"{source.value} as {arch.oci_platform}")
            # the file itself, not on standard input: podman copies a stream into a temp file first
            imp = commands.import_argv(b.engine.binary, arch.oci_arch, arch.oci_variant, tmp, labels,
                                       source=str(Path(source.value).resolve()))
            p = b.children.spawn(imp, stdin=subprocess.DEVNULL, stdout=lf, stderr=lf)
            rc = p.wait()
            if rc != 0:
                raise EngineError(f"podman import of {source.value} failed (exit {rc})", hint=f"log: {log}")
            return None
        debs = b.paths.debs(arch.debian, recipe.suite)
        debs.mkdir(parents=True, exist_ok=True)
        tidy_debs(debs)
        # the mirror the recipe names (and hashes), so the tag says where the packages came from
        mirror = recipe.data.get("mirror", b.mirror)
        spec = bootstrap.BootstrapSpec(arch.debian, recipe.suite, recipe.variant,
                                       None if mirror == "mmdebstrap-default" else mirror,
                                       include=tuple(recipe.data.get("include", ())), debs_cache=debs,
                                       installer=str(recipe.data.get("installer", "chroot")),
                                       merged_usr=recipe.data.get("merged_usr") == "usr-is-merged")
        # the hook sends the .debs it downloaded while dpkg configures, on a pipe of ours
        receiver = _DebsReceiver(debs) if spec.host_dpkg else None
        if receiver is not None:
            cleanup.callback(receiver.finish)  # whatever happens, the thread is done and the pipe closed
            spec = dataclasses.replace(spec, debs_fd=True)
        # podman import reads the root filesystem's tar from a file of ours (in a dir removed when
        # the with block ends, whatever happens): from standard input it would copy it into a temp
        # file of its own first (and leave that in /var/tmp when interrupted)
        imtmp = cleanup.enter_context(podman_tmpdir("import", b.engine.binary))
        rootfs = imtmp / "rootfs.tar"
        argv = bootstrap.mmdebstrap_argv(spec, output=str(rootfs))
        imp = commands.import_argv(b.engine.binary, arch.oci_arch, arch.oci_variant, tmp, labels, source=str(rootfs))
        # its own process group: on interruption the whole mmdebstrap tree (its unshared child
        # included) gets the SIGINT a terminal's Ctrl-C would give it, the path it cleans up after
        # mmdebstrap's temp dirs go into a dir of ours, removed afterwards whatever happens:
        # when interrupted, mmdebstrap sometimes leaves them behind (owned by subordinate ids)
        env = {}
        if arch.emulated and b.private_binfmt(arch):
            if not spec.host_dpkg:
                raise UsageError("a bootstrap with installer = \"chroot\" needs the host's binfmt handler "
                                 f"for {arch.alias} (mmdebstrap runs the target's dpkg itself)",
                                 hint="use installer = \"host-dpkg\" (the default), or 'podrepro binfmt register'")
            # zero-sudo: the extract hook registers qemu in mmdebstrap's own user namespace
            env[hostdpkg.BINFMT_REGISTER_ENV] = privbinfmt.bootstrap_register_line(arch)
        mmtmp = bootstrap.tmpdir(b.engine.binary)
        if hostdpkg.BINFMT_REGISTER_ENV in env:
            # where the hook mounts its namespace's binfmt_misc: in our temp dir (removed
            # afterwards), reachable by the namespace's root (a subordinate id)
            mount = mmtmp / "binfmt_misc"
            mount.mkdir()
            mount.chmod(0o711)
            env[hostdpkg.BINFMT_MOUNT_ENV] = str(mount)
        stream = None
        env["TMPDIR"] = str(mmtmp)
        start = 0
        try:
            if seed and spec.host_dpkg:
                try:
                    built = {t for t, e in b.index.all().items() if e.get("origin") == "built"}
                except (OSError, PodreproError):
                    built = set()  # no index, no seed: a full bootstrap
                stream = open_seed(b.engine, b.children, recipe, mmtmp, lf, built)
            seeding = f", seeded from {stream.image.tags[0]}" if stream is not None else ""
            what = recipe.variant + (f" + the {recipe.profile} profile's {len(spec.include)} packages"
                                     if spec.include else "")
            b.reporter.step("bootstrap", f"mmdebstrap {arch.debian} {recipe.suite} ({what}){seeding} → podman import")
            lf.write(f"$ {' '.join(argv)}\n".encode())
            lf.flush()
            start = lf.tell()  # this attempt's part of the log
            if stream is not None:
                env[hostdpkg.SEED_FD_ENV] = "0"  # mmdebstrap's standard input, which its hooks inherit
            # cwd: a dir of ours, never the project: mmdebstrap reads a mirror argument that names an
            # existing file as a sources.list, and a repository could hold one ("http:/evil")
            # its messages are read here: into the log, to the reporter's status line (what it is
            # doing: "configuring 37/95: ca-certificates"), and with -v to the user as they are
            if receiver is not None:
                env[hostdpkg.DEBS_FD_ENV] = str(receiver.write_fd)  # the hook sends the new .debs there
            try:
                mm = b.children.spawn(argv, stdin=stream.fd if stream is not None else subprocess.DEVNULL,
                                      cwd=str(mmtmp), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      start_new_session=True, env=env,
                                      pass_fds=(receiver.write_fd,) if receiver is not None else ())
            finally:
                if receiver is not None:
                    receiver.started()  # our copy of the write end closed: EOF once mmdebstrap's are
        except BaseException:
            if stream is not None:
                stream.finish()
            remove_tree(mmtmp, b.engine.binary)
            raise
        if stream is not None:
            stream.spawned()
        try:
            assert mm.stdout is not None
            try:
                # an interruption while mmdebstrap runs arrives here: the seed's export container
                # must go whatever happens (stream.finish)
                progress = BootstrapProgress()
                for line in mm.stdout:
                    lf.write(line)
                    if b.verbose:
                        b.reporter.output(line)
                    status = progress.feed(line.decode(errors="replace"))
                    if status is not None:
                        b.reporter.status(status)
                rc_mm = mm.wait()
                rc_im = 0
                if rc_mm == 0:
                    lf.write(f"$ {' '.join(imp)}\n".encode())
                    lf.flush()
                    rc_im = b.children.spawn(imp, stdin=subprocess.DEVNULL, stdout=lf, stderr=lf).wait()
            finally:
                if stream is not None:
                    stream.finish()
        except BaseException:
            # interrupted: the temp dir can go once the whole mmdebstrap tree is gone (the Builder
            # then drops the temporary image)
            b.children.kill_all()
            remove_tree(mmtmp, b.engine.binary)
            raise
        remove_tree(mmtmp, b.engine.binary)
        stored, trouble = receiver.finish() if receiver is not None else (0, None)
        if stored:
            lf.write(f"I: podrepro: {stored} downloaded packages stored in {debs}\n".encode())
    b.children.forget()
    if rc_mm == 0 and trouble is not None:
        b.reporter.warn(f"{trouble}; the next bootstrap downloads them again")
    if rc_mm == 0 and receiver is None and bootstrap.NO_SPACE.search(log.read_text(errors="replace")[-20000:]):
        # mmdebstrap goes on when its sync-out hook cannot save the .debs: say so
        b.reporter.warn(f"no space left on device for the package cache in {debs}; the next bootstrap downloads again")
    if rc_mm != 0:
        # (mmdebstrap's failure line repeats the whole hook, about 30 KB: what apt and the hook
        # said comes before it, so those are looked for in the whole log)
        full = log.read_text(errors="replace")
        text = full[-20000:]
        kind = bootstrap.classify_failure(text)
        last = process.last_line(text, "(no output)", errors_first=True)
        if kind == "transient":
            b.reporter.step("retry", f"mirror trouble: {last}")
            raise _Transient(last)
        if kind == "nospace":
            raise EngineError(f"no space left on device while bootstrapping {arch.debian}",
                              hint=f"free space in {b.paths.cache}, {rootfs.parent.parent} or the podman store; "
                                   f"log: {log}")
        missing = bootstrap.apt_refusal(full)
        if missing is not None:  # a package name apt does not know, or cannot install: say which
            raise EngineError(f"apt cannot install the {recipe.profile} profile's packages for {arch.debian} "
                              f"{recipe.suite}: {missing}",
                              hint=f"check the package names in the profile's packages for {recipe.suite}; "
                                   f"full log: {log}")
        hint = f"full log: {log}"
        if spec.host_dpkg and bootstrap.HOOK_INSTALLING.search(full):
            # the failure came from installing with the host's dpkg: the other way may work
            hint = f"if the host's dpkg cannot install {recipe.suite}'s packages, set installer = \"chroot\"; {hint}"
        raise EngineError(f"mmdebstrap failed (exit {rc_mm}): {last}", hint=hint)
    if rc_im != 0:
        text = log.read_text(errors="replace")[-4000:]
        if bootstrap.NO_SPACE.search(text):
            raise EngineError("no space left on device while importing the root filesystem",
                              hint=f"free space in the podman store; log: {log}")
        last = process.last_line(text, "(no output)", errors_first=True)
        raise EngineError(f"podman import failed (exit {rc_im}): {last}", hint=f"log: {log}")
    return stream.image.tags[0] if stream is not None and hook_seeded(log, start) else None


class _DebsReceiver:
    """Reads the tar of .debs the hook sends on a pipe (while dpkg configures) into the package
    cache, in a thread: plain .deb files only, each written under a temporary name and renamed."""

    NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+~%_:-]*\.deb")

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self._r, self.write_fd = os.pipe()
        self.stored = 0
        self.trouble: str | None = None
        self._write_closed = False
        self._thread = threading.Thread(target=self._run, name="podrepro-debs", daemon=True)

    def started(self) -> None:
        """mmdebstrap has its copy of the write end: ours goes, the thread reads to the end."""
        os.close(self.write_fd)
        self._write_closed = True
        self._thread.start()

    def _run(self) -> None:
        import tarfile

        part: Path | None = None
        try:
            with os.fdopen(self._r, "rb") as pipe, tarfile.open(fileobj=pipe, mode="r|") as tar:
                for member in tar:
                    if not (member.isfile() and self.NAME.fullmatch(member.name)):
                        continue
                    src = tar.extractfile(member)
                    assert src is not None
                    part = self.dest / f".{member.name}.part-{os.getpid()}"
                    with open(part, "wb") as out:
                        shutil.copyfileobj(src, out, 1 << 20)
                    os.replace(part, self.dest / member.name)
                    part = None
                    self.stored += 1
        except tarfile.ReadError:
            pass  # nothing sent: the hook stopped before it configured (its failure says why)
        except OSError as e:  # the pipe's read end closes: the hook's tar stops, it says so
            what = "no space left on device" if e.errno == errno.ENOSPC else e.strerror
            self.trouble = f"{what} for the package cache in {self.dest}"
        finally:
            if part is not None:
                part.unlink(missing_ok=True)

    def finish(self) -> tuple[int, str | None]:
        """Wait for the thread (mmdebstrap is gone, so the pipe is at its end): (stored, trouble).
        Never started: both ends closed. Idempotent."""
        if self._thread.ident is not None:
            self._thread.join(timeout=120)
        elif not self._write_closed:
            self._write_closed = True
            for fd in (self._r, self.write_fd):
                with contextlib.suppress(OSError):
                    os.close(fd)
        return self.stored, self.trouble


def pull_base(b: Builder, recipe: Recipe, source: BaseSource, tmp: str, log: Path) -> None:
    """Pull ``source``'s registry image for the recipe's platform and label it as ``tmp``."""
    assert source.value is not None
    arch = recipe.arch
    b.reporter.step("pull", f"{source.value} for {arch.oci_platform}")
    argv = commands.pull_argv(b.engine.binary, source.value, arch.oci_platform)
    if b.children.run_logged(argv, log, b.echo) != 0:
        raise EngineError(f"could not pull {source.value} for {arch.oci_platform}", hint=f"log: {log}")
    # re-stamp it as ours: a one-line Containerfile adds the recipe labels
    b.engine.tag(source.value, tmp + "-src")
    try:
        cf = f"FROM {tmp}-src\n" + "".join(f"LABEL {k}={json.dumps(v)}\n" for k, v in sorted(recipe.labels().items()))
        ctx = b.paths.cache / "tmp" / tmp.rsplit(":", 1)[1]
        ctx.mkdir(parents=True, exist_ok=True)
        (ctx / "Containerfile").write_text(cf)
        argv = commands.build_argv(b.engine.binary, platform=arch.oci_platform, containerfile=ctx / "Containerfile",
                                   context=ctx, tag=tmp, build_args={}, labels={}, network=False)
        try:
            if b.children.run_logged(argv, log, b.echo) != 0:
                raise EngineError(f"could not label {source.value}", hint=f"log: {log}")
        finally:
            shutil.rmtree(ctx, ignore_errors=True)
    finally:
        with contextlib.suppress(Exception):
            b.engine.remove_image(tmp + "-src")


def tidy_debs(debs: Path) -> None:
    """A layer build mounts the package cache as the container's /var/cache/apt/archives,
    where apt leaves ``partial/`` owned by its _apt user: a subordinate uid on the host, so
    the user can neither read nor replace it, and mmdebstrap's sync-out into the cache fails
    on it. Remove it (inside podman's user namespace, where that uid is ours)."""
    partial = debs / "partial"
    try:
        if partial.lstat().st_uid == os.getuid():
            return
    except FileNotFoundError:
        return
    remove_tree(partial)
    if partial.exists():
        raise EngineError(f"cannot remove {partial}, left in the package cache by a layer build",
                          hint=f"remove it yourself: podman unshare rm -rf {partial}")
