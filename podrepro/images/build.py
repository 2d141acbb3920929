"""The Builder: the image for a recipe, from the cache or built (one build per recipe at a time),
verified, and only then tagged."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podrepro import privbinfmt
from podrepro.arches import Arch
from podrepro.engine import bootstrap, commands, process
from podrepro.engine.children import Children
from podrepro.engine.podman import ImageInfo, Podman, podman_tmpdir
from podrepro.errors import EngineError, Interrupted, PodreproError
from podrepro.images import base as base_images
from podrepro.images.index import Index, timestamp
from podrepro.images.progress import LayerProgress
from podrepro.images.recipe import (
    CROSS_CONTAINERFILE,
    LABEL,
    PACKAGES_CONTAINERFILE,
    REPO,
    TMP_REPO,
    BaseSource,
    Recipe,
    plain_base,
    recipe_label,
)
from podrepro.paths import Paths
from podrepro.profiles import Profile, containerfiles_dir
from podrepro.reporting import Reporter, Silent


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM (and SIGHUP) into an exception for the duration, so cleanup code runs."""
    def handler(signum: int, frame: object) -> None:
        raise Interrupted(f"interrupted by {signal.Signals(signum).name}",
                          hint="nothing was tagged; run the command again")

    old = {}
    if threading.current_thread() is threading.main_thread():
        # SIGINT too: typer turns a KeyboardInterrupt into a silent exit 130, this says what happened
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(s) is not signal.SIG_IGN:  # e.g. nohup, a background job's SIGINT
                old[s] = signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@dataclass(frozen=True)
class BuildResult:
    tag: str
    built: bool                 # False = cache hit
    seconds: float
    log: Path | None = None
    seeded_from: str | None = None  # the earlier base a bootstrap started from


class Builder:
    def __init__(self, engine: Podman, paths: Paths, *, mirror: str | None = None,
                 reporter: Reporter | None = None, verbose: bool = False,
                 private_binfmt: Callable[[Arch], bool] | None = None) -> None:
        self.engine = engine
        # zero-sudo: whether builds for an arch register qemu privately (bootstrap, RUN steps,
        # verification) instead of relying on the host's binfmt handler
        self.private_binfmt = private_binfmt or (lambda arch: False)
        self.paths = paths
        self.mirror = mirror
        self.reporter = reporter or Silent()
        self.verbose = verbose
        self.index = Index(paths)
        self.children = Children()

    @property
    def echo(self) -> Callable[[bytes], None] | None:
        """With -v, a build's own output goes to the reporter too."""
        return self.reporter.output if self.verbose else None

    def _watch_layer(self) -> Callable[[bytes], None]:
        """A layer build's output lines to the reporter's status (podrepro.images.progress)."""
        progress = LayerProgress()

        def watch(line: bytes) -> None:
            status = progress.feed(line.decode(errors="replace"))
            if status is not None:
                self.reporter.status(status)

        return watch

    # -- locking -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _lock(self, recipe: Recipe) -> Iterator[None]:
        from filelock import FileLock, Timeout

        self.paths.locks.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.paths.locks / f"{recipe.digest[:24]}.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            self.reporter.step("wait", f"another podrepro is building {recipe.tag}; waiting for it")
            lock.acquire(timeout=6 * 3600)
        try:
            yield
        finally:
            lock.release()

    # -- logging -------------------------------------------------------------------------------
    def _logfile(self, recipe: Recipe) -> Path:
        self.paths.logs.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return self.paths.logs / f"build-{(recipe.target or recipe.arch).alias}-{'cross-' if recipe.target else ''}{recipe.profile}-{recipe.hash12}-{stamp}.log"

    # -- public ----------------------------------------------------------------------------------
    def ensure(self, recipe: Recipe, *, profile: Profile | None = None, base: Recipe | None = None,
               source: BaseSource = BaseSource(), rebuild: bool = False) -> BuildResult:
        """The image for ``recipe``, built if missing (or if ``rebuild``)."""
        t0 = time.monotonic()
        if not rebuild and self.engine.image_exists(recipe.tag):
            self._touch(recipe)
            return BuildResult(recipe.tag, False, time.monotonic() - t0)
        with self._lock(recipe), terminate_as_interrupt():
            # someone else may have built it while we waited for the lock
            if not rebuild and self.engine.image_exists(recipe.tag):
                self._touch(recipe)
                return BuildResult(recipe.tag, False, time.monotonic() - t0)
            if recipe.kind == "profile":
                assert base is not None and profile is not None
                self.ensure(base, source=source, rebuild=False)
                cf = profile.containerfile_path() or containerfiles_dir() / PACKAGES_CONTAINERFILE
                # packages bootstrapped into ``base`` are there already; a layer installs only those
                # that could not be (on a rootfs or pulled base: see recipe.profile_recipes)
                return self._build_layer(recipe, base, cf, {"PACKAGES": " ".join(recipe.data.get("packages", ()))}, t0,
                                         no_cache=rebuild)
            if recipe.kind == "cross":
                assert base is not None and recipe.target is not None
                self.ensure(base, rebuild=False)
                args = {"DEBARCH": recipe.target.debian,
                        "NATIVE_PACKAGES": " ".join(recipe.data["native_packages"]),
                        "TARGET_PACKAGES": " ".join(recipe.data["target_packages"])}
                return self._build_layer(recipe, base, containerfiles_dir() / CROSS_CONTAINERFILE, args, t0,
                                         no_cache=rebuild)
            if recipe.data.get("include") and not rebuild and self._holds_a_base_like(recipe):
                # a profile's package base starts from the plain base (its seed): a new profile
                # never installs the base's packages again. The first image of an architecture
                # and suite is bootstrapped in one pass instead (one resolution, one download,
                # one import; bench/README.md); a later profile then builds the
                # plain base and seeds from it
                self.ensure(plain_base(recipe), rebuild=False)
            # a rebuild is a bootstrap from scratch: no seeding from an earlier base
            return self._build_base(recipe, source, t0, seed=not rebuild)

    def _holds_a_base_like(self, recipe: Recipe) -> bool:
        """Whether the store holds a podrepro base of ``recipe``'s Debian architecture and suite."""
        try:
            images = self.engine.list_images(f"{LABEL}.kind=base")
        except PodreproError:
            return True  # cannot tell: the plain base first, the way that always works
        for img in images:
            data = recipe_label(img.labels)
            if img.tags and data.get("debian_arch") == recipe.arch.debian and data.get("suite") == recipe.suite:
                return True
        return False

    def _record(self, tag: str, **fields: Any) -> None:
        """Index a freshly built image. The index is a cache: failing to write it (a full disk)
        must not turn a built, verified, tagged image into a failed command."""
        try:
            self.index.update(tag, origin="built", **fields)
            if self.index.warning is not None:  # it was corrupted: set aside; rebuild the rest
                self.index.rebuild(self.engine.list_images(f"{LABEL}.hash"))
                self.reporter.warn(self.index.warning)
                self.index.warning = None
        except OSError as e:
            self.reporter.warn(f"could not update the image index in {self.paths.cache}: {e.strerror}; {tag} is built")

    def _touch(self, recipe: Recipe) -> None:
        with contextlib.suppress(OSError, PodreproError):
            self.index.update(recipe.tag, last_used=timestamp())

    def _tmp_tag(self, recipe: Recipe) -> str:
        return f"{TMP_REPO}:{recipe.hash12}-{os.getpid()}-{secrets.token_hex(3)}"

    def _build_base(self, recipe: Recipe, source: BaseSource, t0: float, seed: bool = True) -> BuildResult:
        arch = recipe.arch
        tmp = self._tmp_tag(recipe)
        log = self._logfile(recipe)
        seeded = None
        try:
            if source.kind == "ref":
                base_images.pull_base(self, recipe, source, tmp, log)
            else:
                seeded = base_images.bootstrap_base(self, recipe, source, tmp, log, seed)
            info = self._promote(tmp, recipe, log)
        except BaseException:
            self._abandon(tmp)
            raise
        self._record(recipe.tag, hash=recipe.hash12, arch=arch.alias, profile=recipe.profile, kind="base",
                     recipe=recipe.data, size=info.size, created=timestamp(), last_used=timestamp(), id=info.id,
                     **({"seeded_from": seeded} if seeded else {}))
        how = f", seeded from {seeded}" if seeded else ""
        self.reporter.done(f"built {recipe.tag} in {time.monotonic() - t0:.0f}s{how} (log: {log})")
        return BuildResult(recipe.tag, True, time.monotonic() - t0, log, seeded_from=seeded)

    def _build_layer(self, recipe: Recipe, base: Recipe, cf: Path, build_args: Mapping[str, str], t0: float,
                     no_cache: bool = False) -> BuildResult:
        arch = recipe.arch
        tmp = self._tmp_tag(recipe)
        log = self._logfile(recipe)
        # podrepro's own Containerfiles share the .deb cache; a project's gets its own (see Paths.debs)
        own = cf.resolve().is_relative_to(containerfiles_dir().resolve())
        debs = self.paths.debs(arch.debian, recipe.suite, None if own else cf)
        debs.mkdir(parents=True, exist_ok=True)
        argv = commands.build_argv(
            self.engine.binary, platform=arch.oci_platform, containerfile=cf, context=cf.parent, tag=tmp,
            build_args={"BASE": base.tag, **build_args},
            labels=recipe.labels(),
            # the per-arch .deb cache makes a rebuild after a recipe change skip the downloads
            volumes=[f"{debs}:/var/cache/apt/archives"],
            no_cache=no_cache,
            # zero-sudo: RUN steps through an OCI-runtime wrapper that gives each its own handler
            extra=privbinfmt.build_args(arch, self.paths) if self.private_binfmt(arch) else (),
        )
        started_ticks = process.boot_ticks()
        try:
            what = f"cross toolchain for {recipe.target.alias}, {recipe.profile}" if recipe.target else recipe.profile
            self.reporter.step("layer", f"{what} on {base.tag}")
            # podman build's RUN steps stage in its temp dir, left there when it is interrupted
            with podman_tmpdir("build", self.engine.binary) as tmpdir:
                rc = self.children.run_logged(argv, log, self.echo, watch=self._watch_layer(),
                                              env={"TMPDIR": str(tmpdir)})
            if rc != 0:
                text = log.read_text(errors="replace")[-4000:]
                if bootstrap.NO_SPACE.search(text):
                    raise EngineError("no space left on device while building the profile layer", hint=f"log: {log}")
                last = process.last_line(text, "(no output)", errors_first=True)
                raise EngineError(f"building the {recipe.profile!r} {recipe.kind} layer failed (exit {rc}): {last}",
                                  hint=f"full log: {log}")
            info = self._promote(tmp, recipe, log)
        except BaseException:
            self._abandon(tmp)
            with contextlib.suppress(Exception):
                process.kill_orphaned_build_steps(started_ticks)
            with contextlib.suppress(Exception):
                self.cleanup_build_containers()
            raise
        finally:
            with contextlib.suppress(Exception):
                base_images.tidy_debs(debs)  # the next bootstrap tidies (and reports) it too
        self._record(recipe.tag, hash=recipe.hash12, arch=(recipe.target or arch).alias, profile=recipe.profile,
                     kind=recipe.kind, recipe=recipe.data, size=info.size, created=timestamp(),
                     last_used=timestamp(), id=info.id)
        self.reporter.done(f"built {recipe.tag} in {time.monotonic() - t0:.0f}s (log: {log})")
        return BuildResult(recipe.tag, True, time.monotonic() - t0, log)

    def _promote(self, tmp: str, recipe: Recipe, log: Path) -> ImageInfo:
        """Verify the temporary image, then give it its real tag: only verified images get one.

        A ``--rebuild`` moves the tag off the previous image of the recipe; that image is then
        removed too (unless something still uses it), instead of lingering untagged where
        ``image prune`` cannot see it."""
        info = self.verify(tmp, recipe.arch, log)
        previous = self.engine.inspect(recipe.tag)
        self.engine.tag(tmp, recipe.tag)
        self.engine.remove_image(tmp)
        if previous is not None and previous.id != info.id:
            with contextlib.suppress(PodreproError):
                still = self.engine.inspect(previous.id)
                if still is not None and not still.tags:
                    self.engine.remove_image(previous.id)  # never forced: a running container keeps it
        return info

    def _abandon(self, tmp: str) -> None:
        """After a failure or an interruption: stop the children, drop the temporary image."""
        self.children.kill_all()
        with contextlib.suppress(Exception):
            self.engine.remove_image(tmp, force=True)

    def verify(self, ref: str, arch: Arch, log: Path | None = None) -> ImageInfo:
        """Platform matches and ``uname -m`` inside equals the table's value; else raise."""
        self.reporter.step("verify", f"platform {arch.oci_platform}, " + (
            f"uname -m = {arch.uname_m}" if arch.emulated else f"{8 * 4 * arch.elf_class}-bit userland"))
        info = self.engine.inspect(ref)
        if info is None:
            raise EngineError(f"image {ref} vanished during the build")
        if info.architecture != arch.oci_arch or (info.os or "linux") != "linux":
            raise EngineError(f"image {ref} is {info.os}/{info.architecture}, expected {arch.oci_platform}")
        extra = privbinfmt.prepare(arch, self.paths) if self.private_binfmt(arch) else []
        # an emulated arch: qemu answers uname with the target's machine. A native one (i386,
        # amd64) shares the host's kernel, whose uname says x86_64 unless the runtime sets the
        # 32-bit personality (podman 4.3 does not): its userland's word size is what to check
        check, want = (["uname", "-m"], arch.uname_m) if arch.emulated else \
            (["getconf", "LONG_BIT"], "32" if arch.elf_class == 1 else "64")
        cp = self.engine.run(ref, check, platform=arch.oci_platform, timeout=120, extra=extra)
        got = cp.stdout.decode(errors="replace").strip()
        if log is not None:
            with open(log, "ab") as lf:
                lf.write(f"verify: {' '.join(check)} -> {got!r} (exit {cp.returncode})\n".encode() + cp.stderr)
        if cp.returncode != 0 or got != want:
            detail = got or process.last_line(cp.stderr, "(no output)", errors_first=True)
            raise EngineError(f"verification failed: {' '.join(check)} in {ref} printed {detail!r}, expected {want!r}",
                              hint=f"is the binfmt handler for {arch.alias} usable? run 'podrepro doctor {arch.alias}'")
        return info

    def cleanup_build_containers(self) -> None:
        """Remove buildah working containers an interrupted ``podman build`` left behind."""
        def leftover(c: Mapping[str, Any]) -> bool:
            image = str(c.get("Image") or "")
            return bool(c.get("IsExternal") or "buildah" in str(c.get("Command") or "")) and (
                image.startswith(REPO) or "podrepro" in image)

        self.engine.remove_containers(leftover, external=True)
