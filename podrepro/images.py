"""Recipes, content hashes, the cache index, locks, and building/verifying images.

A recipe is everything that decides an image's content, minus things that do not (the mirror):
base = arch + suite + variant + installer + podrepro's recipe version (+ a rootfs digest or registry ref
when the base does not come from mmdebstrap); profile layer = base hash + Containerfile bytes +
package list. Its SHA-256 names the image: ``localhost/podrepro/<profile>:<arch>-<hash12>``.
Images are built under a temporary tag and only tagged with their real name after they passed
verification, so a failed or interrupted build never leaves a "good" tag on a bad image.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from podrepro import __version__
from podrepro.arches import Arch
from podrepro.engine import bootstrap, commands, process
from podrepro.engine.children import Children
from podrepro.engine.podman import ImageInfo, Podman, remove_tree
from podrepro.errors import EngineError, Interrupted, PodreproError, UsageError
from podrepro.paths import Paths
from podrepro.profiles import Profile
from podrepro.reporting import Reporter, Silent

RECIPE_VERSION = 1
REPO = "localhost/podrepro"
TMP_REPO = f"{REPO}/tmp"
LABEL = "io.podrepro"


@dataclass(frozen=True)
class Recipe:
    kind: str                   # "base" or "profile"
    arch: Arch
    suite: str
    variant: str
    profile: str
    data: Mapping[str, Any]     # the hashed content

    @property
    def digest(self) -> str:
        blob = json.dumps(self.data, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()

    @property
    def hash12(self) -> str:
        return self.digest[:12]

    @property
    def tag(self) -> str:
        repo = "base" if self.kind == "base" else self.profile
        return f"{REPO}/{repo}:{self.arch.alias}-{self.hash12}"

    def labels(self) -> dict[str, str]:
        return {
            f"{LABEL}.recipe": json.dumps(self.data, sort_keys=True, separators=(",", ":")),
            f"{LABEL}.hash": self.hash12,
            f"{LABEL}.arch": self.arch.alias,
            f"{LABEL}.platform": self.arch.oci_platform,
            f"{LABEL}.profile": self.profile,
            f"{LABEL}.kind": self.kind,
            f"{LABEL}.suite": self.suite,
            f"{LABEL}.podrepro-version": __version__,
        }


@dataclass(frozen=True)
class BaseSource:
    """Where the base comes from: mmdebstrap (default), a rootfs tarball, or a registry ref."""

    kind: str = "mmdebstrap"         # "mmdebstrap" | "rootfs" | "ref"
    value: str | None = None         # rootfs path or image ref
    digest: str | None = None        # sha256 of the rootfs tarball


def base_recipe(arch: Arch, suite: str, variant: str, source: BaseSource = BaseSource(),
                installer: str = "host-dpkg") -> Recipe:
    data: dict[str, Any] = {
        "kind": "base", "recipe_version": RECIPE_VERSION, "arch": arch.alias, "debian_arch": arch.debian,
        "platform": arch.oci_platform, "suite": suite, "variant": variant, "source": source.kind,
    }
    if source.kind == "mmdebstrap":
        data["installer"] = installer  # how mmdebstrap's packages get installed (bootstrap.INSTALLERS)
    elif source.kind == "rootfs":
        data["rootfs_sha256"] = source.digest
    elif source.kind == "ref":
        data["ref"] = source.value
    return Recipe("base", arch, suite, variant, "base", data)


def profile_recipe(base: Recipe, profile: Profile) -> Recipe:
    cf = profile.containerfile_path()
    if cf is None and not profile.packages:
        return Recipe("base", base.arch, base.suite, base.variant, "base", base.data)
    if cf is None or not cf.is_file():
        raise UsageError(f"profile {profile.name!r}: Containerfile {profile.containerfile!r} not found",
                         hint="fix 'containerfile' in podrepro.toml")
    data = {
        "kind": "profile", "recipe_version": RECIPE_VERSION, "base": base.digest, "profile": profile.name,
        "containerfile_sha256": hashlib.sha256(cf.read_bytes()).hexdigest(),
        "packages": sorted(profile.packages),
    }
    return Recipe("profile", base.arch, base.suite, base.variant, profile.name, data)


def resolve_suite(arch: Arch, configured: str) -> str:
    return arch.suite if configured in ("", "auto") else configured


def resolve_mirror(configured: str) -> tuple[str | None, str]:
    """(mirror or None for mmdebstrap's default, where it came from)."""
    if configured not in ("", "auto"):
        return configured, "configured"
    host = bootstrap.host_debian_mirror()
    if host:
        return host, "host apt sources"
    return None, "mmdebstrap default"


def choose_seed(images: list[ImageInfo], recipe: Recipe) -> ImageInfo | None:
    """The earlier base a host-dpkg bootstrap of ``recipe`` starts from (see bootstrap.HOST_DPKG_HOOK).

    Candidates: tagged podrepro bases of the same Debian architecture and suite that mmdebstrap
    bootstrapped with the host-dpkg installer, whose variant's package patterns are all among
    ``recipe``'s (so its packages are likely a subset; the hook checks the real sets). The one
    with the most patterns wins (the most packages already configured), then the newest."""
    if recipe.kind != "base" or recipe.data.get("source") != "mmdebstrap" or recipe.data.get("installer") != "host-dpkg":
        return None
    wanted = set(bootstrap.VARIANT_PACKAGES.get(recipe.variant, ()))
    if not wanted:
        return None
    best: tuple[int, str] | None = None
    chosen = None
    for img in images:
        try:
            data = json.loads(img.labels.get(f"{LABEL}.recipe", ""))
        except ValueError:
            continue
        if not isinstance(data, dict) or not img.tags or recipe.tag in img.tags:
            continue
        if (data.get("kind"), data.get("source"), data.get("installer")) != ("base", "mmdebstrap", "host-dpkg"):
            continue
        if data.get("debian_arch") != recipe.arch.debian or data.get("suite") != recipe.suite:
            continue
        patterns = set(bootstrap.VARIANT_PACKAGES.get(str(data.get("variant")), ()))
        if not patterns or not patterns <= wanted:
            continue
        rank = (len(patterns), img.created)
        if best is None or rank > best:
            best, chosen = rank, img
    return chosen


# ---- cache index --------------------------------------------------------------------------------

class Index:
    """images.json in the cache dir: recipe, size, created, last used — per image tag.

    Written atomically (temp file + rename) under a lock; a corrupted file is set aside
    (``images.json.corrupt``) and rebuilt from the images' labels, never a crash."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self.file = paths.index_file
        self.warning: str | None = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        from filelock import FileLock

        self.paths.ensure_cache()
        with FileLock(str(self.file) + ".lock", timeout=60):
            yield

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.file.read_text())
            if not isinstance(data, dict) or not isinstance(data.get("images"), dict):
                raise ValueError("not an index")
            return data
        except FileNotFoundError:
            return {"version": 1, "images": {}}
        except (ValueError, OSError, UnicodeDecodeError):
            with contextlib.suppress(OSError):
                self.file.replace(self.file.with_suffix(".json.corrupt"))
            self.warning = f"the image index {self.file} was corrupted; it was set aside and rebuilt"
            return {"version": 1, "images": {}}

    def _write(self, data: dict[str, Any]) -> None:
        tmp = self.file.with_name(f".{self.file.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, self.file)

    def all(self) -> dict[str, dict[str, Any]]:
        with self._locked():
            images: dict[str, dict[str, Any]] = self._read()["images"]
        # runs only touch a stamp file (no lock, no JSON rewrite on the hot path)
        for tag, rec in images.items():
            try:
                used = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.stamp(tag).stat().st_mtime))
            except OSError:
                continue
            if used > str(rec.get("last_used") or ""):
                rec["last_used"] = used
        return images

    def stamp(self, tag: str) -> Path:
        return self.paths.cache / "used" / hashlib.sha256(tag.encode()).hexdigest()[:24]

    def touch(self, tag: str) -> None:
        """Record a use of ``tag`` cheaply: the mtime of a per-tag stamp file."""
        p = self.stamp(tag)
        try:
            os.utime(p)
        except FileNotFoundError:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.touch()

    def update(self, tag: str, **fields: Any) -> None:
        with self._locked():
            data = self._read()
            data["images"].setdefault(tag, {}).update(fields)
            self._write(data)

    def remove(self, tag: str) -> None:
        with self._locked():
            data = self._read()
            if data["images"].pop(tag, None) is not None:
                self._write(data)


# ---- signals ------------------------------------------------------------------------------------

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


# ---- builder ------------------------------------------------------------------------------------

@dataclass
class BuildResult:
    tag: str
    built: bool                 # False = cache hit
    seconds: float
    info: ImageInfo | None = None
    log: Path | None = None
    steps: list[str] = field(default_factory=list)
    seeded_from: str | None = None  # the earlier base a bootstrap started from


class Builder:
    def __init__(self, engine: Podman, paths: Paths, *, mirror: str | None = None,
                 reporter: Reporter | None = None, verbose: bool = False) -> None:
        self.engine = engine
        self.paths = paths
        self.mirror = mirror
        self.reporter = reporter or Silent()
        self.verbose = verbose
        self.index = Index(paths)
        self.children = Children()

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
        return self.paths.logs / f"build-{recipe.arch.alias}-{recipe.profile}-{recipe.hash12}-{stamp}.log"

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
                return self._build_layer(recipe, base, profile, t0, no_cache=rebuild)
            # a rebuild is a bootstrap from scratch: no seeding from an earlier base
            return self._build_base(recipe, source, t0, seed=not rebuild)

    def _record(self, tag: str, **fields: Any) -> None:
        """Index a freshly built image. The index is a cache: failing to write it (a full disk)
        must not turn a built, verified, tagged image into a failed command."""
        try:
            self.index.update(tag, **fields)
        except OSError as e:
            self.reporter.warn(f"could not update the image index in {self.paths.cache}: {e.strerror}; {tag} is built")

    def _touch(self, recipe: Recipe) -> None:
        with contextlib.suppress(OSError, PodreproError):
            self.index.update(recipe.tag, last_used=_now())

    def _tmp_tag(self, recipe: Recipe) -> str:
        return f"{TMP_REPO}:{recipe.hash12}-{os.getpid()}-{secrets.token_hex(3)}"

    def _build_base(self, recipe: Recipe, source: BaseSource, t0: float, seed: bool = True) -> BuildResult:
        arch = recipe.arch
        tmp = self._tmp_tag(recipe)
        log = self._logfile(recipe)
        seeded = None
        try:
            if source.kind == "ref":
                self._pull_base(recipe, source, tmp, log)
            else:
                seeded = self._bootstrap_with_retries(recipe, source, tmp, log, seed)
            info = self._promote(tmp, recipe, log)
        except BaseException:
            self._abandon(tmp)
            raise
        self._record(recipe.tag, hash=recipe.hash12, arch=arch.alias, profile="base", kind="base",
                     recipe=recipe.data, size=info.size, created=_now(), last_used=_now(), id=info.id,
                     **({"seeded_from": seeded} if seeded else {}))
        how = f", seeded from {seeded}" if seeded else ""
        self.reporter.done(f"built {recipe.tag} in {time.monotonic() - t0:.0f}s{how} (log: {log})")
        return BuildResult(recipe.tag, True, time.monotonic() - t0, info, log, seeded_from=seeded)

    def _bootstrap_with_retries(self, recipe: Recipe, source: BaseSource, tmp: str, log: Path,
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
                self.engine.remove_image(tmp, force=True)
            return self._bootstrap_once(recipe, source, tmp, log, seed)

        try:
            return attempt()
        except _Transient as e:
            raise EngineError(f"bootstrap of {recipe.arch.debian} {recipe.suite} failed after {attempts} attempts: "
                              f"{e.line}", hint=f"mirror trouble? full log: {log}; try --mirror URL") from None

    def _bootstrap_once(self, recipe: Recipe, source: BaseSource, tmp: str, log: Path,
                        seed: bool = True) -> str | None:
        """Bootstrap (or import a rootfs) into the image ``tmp``; the tag of the earlier base the
        hook seeded the root filesystem from, if it did."""
        arch = recipe.arch
        labels = recipe.labels()
        imp = commands.import_argv(self.engine.binary, arch.oci_arch, arch.oci_variant, tmp, labels)
        with open(log, "ab") as lf:
            if source.kind == "rootfs":
                assert source.value is not None
                self.reporter.step("import", f"{source.value} as {arch.oci_platform}")
                with open(source.value, "rb") as src:
                    p = self.children.spawn(imp, stdin=src, stdout=lf, stderr=lf)
                    rc = p.wait()
                if rc != 0:
                    raise EngineError(f"podman import of {source.value} failed (exit {rc})", hint=f"log: {log}")
                return None
            debs = self.paths.debs(arch.debian, recipe.suite)
            debs.mkdir(parents=True, exist_ok=True)
            self._tidy_debs(debs)
            spec = bootstrap.BootstrapSpec(arch.debian, recipe.suite, recipe.variant, self.mirror, debs_cache=debs,
                                           installer=str(recipe.data.get("installer", "chroot")))
            argv = bootstrap.mmdebstrap_argv(spec)
            err_sink: Any = subprocess.PIPE if self.verbose else lf
            # its own process group: on interruption the whole mmdebstrap tree (its unshared child
            # included) gets the SIGINT a terminal's Ctrl-C would give it, the path it cleans up after
            # mmdebstrap's temp dirs go into a dir of ours, removed afterwards whatever happens:
            # when interrupted, mmdebstrap sometimes leaves them behind (owned by subordinate ids)
            mmtmp = bootstrap.tmpdir(self.engine.binary)
            stream = None
            env = {"TMPDIR": str(mmtmp)}
            start = 0
            try:
                if seed and spec.host_dpkg:
                    stream = self._seed_stream(recipe, mmtmp, lf)
                seeding = f", seeded from {stream.image.tags[0]}" if stream is not None else ""
                self.reporter.step("bootstrap", f"mmdebstrap {arch.debian} {recipe.suite} ({recipe.variant}){seeding}"
                                                " → podman import")
                lf.write(f"$ {' '.join(argv)} | {' '.join(imp)}\n".encode())
                lf.flush()
                start = lf.tell()  # this attempt's part of the log
                if stream is not None:
                    env[bootstrap.SEED_FD_ENV] = "0"  # mmdebstrap's standard input, which its hooks inherit
                mm = self.children.spawn(argv, stdin=stream.fd if stream is not None else subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=err_sink, start_new_session=True, env=env)
            except BaseException:
                if stream is not None:
                    stream.finish()
                self._rm_tree(mmtmp)
                raise
            if stream is not None:
                stream.spawned()
            self._mm_tmp: Path | None = mmtmp
            assert mm.stdout is not None
            im = self.children.spawn(imp, stdin=mm.stdout, stdout=lf, stderr=lf)
            mm.stdout.close()  # podman import owns the read end now
            if self.verbose and mm.stderr is not None:
                for line in mm.stderr:
                    lf.write(line)
                    self.reporter.output(line)
            try:
                rc_mm = mm.wait()
                rc_im = im.wait()
            finally:
                if stream is not None:
                    stream.finish()
                if mm.poll() is not None:
                    self._rm_tree(mmtmp)
        self.children.forget()
        if rc_mm == 0 and bootstrap.NO_SPACE.search(log.read_text(errors="replace")[-20000:]):
            # mmdebstrap goes on when its sync-out hook cannot save the .debs: say so
            self.reporter.warn(f"no space left on device for the package cache in {debs}; the next bootstrap downloads again")
        if rc_mm != 0:
            text = log.read_text(errors="replace")[-20000:]
            kind = bootstrap.classify_failure(text)
            last = process.last_line(text, "(no output)", errors_first=True)
            if kind == "transient":
                self.reporter.step("retry", f"mirror trouble: {last}")
                raise _Transient(last)
            if kind == "nospace":
                raise EngineError(f"no space left on device while bootstrapping {arch.debian}",
                                  hint=f"free space in {self.paths.cache} or the podman store; log: {log}")
            hint = f"full log: {log}"
            if spec.host_dpkg and "podrepro:" in text:
                # the failure came from installing with the host's dpkg: the other way may work
                hint = f"if the host's dpkg cannot install {recipe.suite}'s packages, set installer = \"chroot\"; {hint}"
            raise EngineError(f"mmdebstrap failed (exit {rc_mm}): {last}", hint=hint)
        if rc_im != 0:
            text = log.read_text(errors="replace")[-4000:]
            if bootstrap.NO_SPACE.search(text):
                raise EngineError("no space left on device while importing the root filesystem",
                                  hint=f"free space in the podman store; log: {log}")
            raise EngineError(f"podman import failed (exit {rc_im}): {process.last_line(text, '(no output)', errors_first=True)}", hint=f"log: {log}")
        return stream.image.tags[0] if stream is not None and hook_seeded(log, start) else None

    def _pull_base(self, recipe: Recipe, source: BaseSource, tmp: str, log: Path) -> None:
        assert source.value is not None
        arch = recipe.arch
        self.reporter.step("pull", f"{source.value} for {arch.oci_platform}")
        argv = commands.pull_argv(self.engine.binary, source.value, arch.oci_platform)
        cp = self.children.run_logged(argv, log, self._echo())
        if cp != 0:
            raise EngineError(f"could not pull {source.value} for {arch.oci_platform}", hint=f"log: {log}")
        # re-stamp it as ours: a one-line Containerfile adds the recipe labels
        self.engine.tag(source.value, tmp + "-src")
        try:
            cf = f"FROM {tmp}-src\n" + "".join(f"LABEL {k}={json.dumps(v)}\n" for k, v in sorted(recipe.labels().items()))
            ctx = self.paths.cache / "tmp" / tmp.rsplit(":", 1)[1]
            ctx.mkdir(parents=True, exist_ok=True)
            (ctx / "Containerfile").write_text(cf)
            argv = commands.build_argv(self.engine.binary, platform=arch.oci_platform, containerfile=ctx / "Containerfile",
                                       context=ctx, tag=tmp, build_args={}, labels={}, network=False)
            try:
                if self.children.run_logged(argv, log, self._echo()) != 0:
                    raise EngineError(f"could not label {source.value}", hint=f"log: {log}")
            finally:
                import shutil

                shutil.rmtree(ctx, ignore_errors=True)
        finally:
            with contextlib.suppress(Exception):
                self.engine.remove_image(tmp + "-src")

    @staticmethod
    def _tidy_debs(debs: Path) -> None:
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

    def _build_layer(self, recipe: Recipe, base: Recipe, profile: Profile, t0: float,
                     no_cache: bool = False) -> BuildResult:
        arch = recipe.arch
        tmp = self._tmp_tag(recipe)
        log = self._logfile(recipe)
        cf = profile.containerfile_path()
        assert cf is not None  # profile_recipe makes a layer recipe only for profiles that have one
        debs = self.paths.debs(arch.debian, recipe.suite)
        debs.mkdir(parents=True, exist_ok=True)
        argv = commands.build_argv(
            self.engine.binary, platform=arch.oci_platform, containerfile=cf, context=cf.parent, tag=tmp,
            build_args={"BASE": base.tag, "PACKAGES": " ".join(profile.packages)},
            labels=recipe.labels(),
            # the per-arch .deb cache makes a rebuild after a recipe change skip the downloads
            volumes=[f"{debs}:/var/cache/apt/archives"],
            no_cache=no_cache,
        )
        started_ticks = process.boot_ticks()
        try:
            self.reporter.step("layer", f"{profile.name} on {base.tag}")
            rc = self.children.run_logged(argv, log, self._echo())
            if rc != 0:
                text = log.read_text(errors="replace")[-4000:]
                if bootstrap.NO_SPACE.search(text):
                    raise EngineError("no space left on device while building the profile layer", hint=f"log: {log}")
                raise EngineError(f"building the {profile.name!r} layer failed (exit {rc}): {process.last_line(text, '(no output)', errors_first=True)}",
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
                self._tidy_debs(debs)  # the next bootstrap tidies (and reports) it too
        self._record(recipe.tag, hash=recipe.hash12, arch=arch.alias, profile=profile.name, kind="profile",
                          recipe=recipe.data, size=info.size, created=_now(), last_used=_now(), id=info.id)
        self.reporter.done(f"built {recipe.tag} in {time.monotonic() - t0:.0f}s (log: {log})")
        return BuildResult(recipe.tag, True, time.monotonic() - t0, info, log)

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
        self._kill_children()
        with contextlib.suppress(Exception):
            self.engine.remove_image(tmp, force=True)

    def verify(self, ref: str, arch: Arch, log: Path | None = None) -> ImageInfo:
        """Platform matches and ``uname -m`` inside equals the table's value; else raise."""
        self.reporter.step("verify", f"platform {arch.oci_platform}, uname -m = {arch.uname_m}")
        info = self.engine.inspect(ref)
        if info is None:
            raise EngineError(f"image {ref} vanished during the build")
        if info.architecture != arch.oci_arch or (info.os or "linux") != "linux":
            raise EngineError(f"image {ref} is {info.os}/{info.architecture}, expected {arch.oci_platform}")
        cp = self.engine.run(ref, ["uname", "-m"], platform=arch.oci_platform, timeout=120)
        got = cp.stdout.decode(errors="replace").strip()
        if log is not None:
            with open(log, "ab") as lf:
                lf.write(f"verify: uname -m -> {got!r} (exit {cp.returncode})\n".encode() + cp.stderr)
        if cp.returncode != 0 or got != arch.uname_m:
            detail = got or process.last_line(cp.stderr, "(no output)", errors_first=True)
            raise EngineError(f"verification failed: uname -m in {ref} printed {detail!r}, expected {arch.uname_m!r}",
                              hint=f"is the binfmt handler for {arch.alias} usable? run 'podrepro doctor {arch.alias}'")
        return info

    def cleanup_build_containers(self) -> None:
        """Remove buildah working containers an interrupted ``podman build`` left behind."""
        def leftover(c: Mapping[str, Any]) -> bool:
            image = str(c.get("Image") or "")
            return bool(c.get("IsExternal") or "buildah" in str(c.get("Command") or "")) and (
                image.startswith(REPO) or "podrepro" in image)

        self.engine.remove_containers(leftover, external=True)

    # -- seeding -----------------------------------------------------------------------------------
    def _seed_stream(self, recipe: Recipe, workdir: Path, lf: IO[bytes]) -> SeedStream | None:
        """Start exporting the earlier base that ``recipe``'s bootstrap can start from, if any."""
        try:
            remove_stale_seed_containers(self.engine)
            image = choose_seed(self.engine.list_images(f"{LABEL}.kind=base"), recipe)
        except PodreproError:
            return None
        if image is None:
            return None
        stream = SeedStream(self, image, workdir, lf)
        return stream if stream.start() else None

    # -- helpers -------------------------------------------------------------------------------
    def _rm_tree(self, d: Path) -> None:
        remove_tree(d, self.engine.binary)

    def _kill_children(self) -> None:
        try:
            self.children.kill_all()
        finally:
            mmtmp = getattr(self, "_mm_tmp", None)
            if mmtmp is not None and mmtmp.exists():
                self._rm_tree(mmtmp)

    def _echo(self) -> Callable[[bytes], None] | None:
        """With -v, a build's own output goes to the reporter too."""
        return self.reporter.output if self.verbose else None


SEED_PREFIX = "podrepro-seed-"
# a base exports in seconds; past this the bootstrap stops waiting for it and installs everything
EXPORT_TIMEOUT = 180


class SeedStream:
    """An earlier base's root filesystem on a pipe, for the bootstrap hook's seeding.

    ``podman export`` writes it to a file in mmdebstrap's temp dir while mmdebstrap updates,
    downloads and extracts (off the critical path); a thread then copies the file into the pipe,
    so the hook, which blocks on the pipe, reads a complete tar or (a failed export) an empty one.
    A hook that does not read it (mmdebstrap failed earlier) just breaks the pipe."""

    def __init__(self, builder: Builder, image: ImageInfo, workdir: Path, lf: IO[bytes]) -> None:
        self.builder = builder
        self.image = image
        self.file = workdir / "seed.tar"
        self.lf = lf
        self.container: str | None = None
        self.export: subprocess.Popen[bytes] | None = None
        self.thread: threading.Thread | None = None
        self.fd = -1
        self._write = -1

    def start(self) -> bool:
        engine = self.builder.engine
        name = f"{SEED_PREFIX}{os.getpid()}-{secrets.token_hex(3)}"
        cp = engine.create_container(self.image.id, name)
        if cp.returncode != 0:
            self.lf.write(b"seed not used, podman create failed: " + cp.stderr[-500:] + b"\n")
            return False
        self.container = name
        self.fd, self._write = os.pipe()
        self.lf.write(f"seed: {self.image.tags[0]} ({self.image.id[:12]}) via container {name}\n".encode())
        self.lf.flush()
        self.export = self.builder.children.spawn(commands.export_argv(engine.binary, name, self.file),
                                                  stdout=self.lf, stderr=self.lf)
        self.thread = threading.Thread(target=self._feed, name="podrepro-seed", daemon=True)
        self.thread.start()
        return True

    def spawned(self) -> None:
        """mmdebstrap has the read end now: drop ours, so a hook that exits breaks the pipe."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -2

    def _feed(self) -> None:
        assert self.export is not None
        try:
            try:
                rc = self.export.wait(timeout=EXPORT_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.lf.write(f"seed not used: podman export took over {EXPORT_TIMEOUT}s\n".encode())
                self.export.kill()
                self.export.wait()
                rc = -1
            if rc != 0:
                return
            with open(self.file, "rb") as f:
                size, offset = os.fstat(f.fileno()).st_size, 0
                while offset < size:
                    sent = os.sendfile(self._write, f.fileno(), offset, size - offset)
                    if sent == 0:
                        break
                    offset += sent
        except OSError:
            pass  # a broken pipe: the hook did not want it
        finally:
            os.close(self._write)
            self._write = -1

    def finish(self) -> None:
        """After mmdebstrap: stop the export if it still runs, drop its container and file."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -2
        if self.export is not None and self.export.poll() is None:
            self.export.terminate()
        if self.thread is not None:
            self.thread.join(timeout=60)
        if self.container is not None:
            self.builder.engine.remove_container(self.container, timeout=120)
            self.container = None
        with contextlib.suppress(OSError):
            self.file.unlink()


def remove_stale_seed_containers(engine: Podman) -> list[str]:
    """Remove the export containers of seeded bootstraps whose podrepro is gone (killed: their
    names carry its pid); they would keep their image from being pruned. Returns their names."""
    def stale(c: Mapping[str, Any]) -> bool:
        names = c.get("Names") or []
        return any(str(n).startswith(SEED_PREFIX) and process.owner_gone(str(n)[len(SEED_PREFIX):])
                   for n in (names if isinstance(names, list) else [names]))

    return engine.remove_containers(stale, filters=[f"name=^{SEED_PREFIX}"])


def hook_seeded(log: Path, start: int = 0) -> bool:
    """Whether the bootstrap hook seeded the root filesystem, as the log says after ``start``
    (where this attempt's output begins: an earlier attempt's verdict does not count)."""
    try:
        with open(log, "rb") as f:
            f.seek(start)
            return bootstrap.SEEDED.encode() in f.read()
    except OSError:
        return False


class _Transient(Exception):
    def __init__(self, line: str) -> None:
        super().__init__(line)
        self.line = line


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def sha256_file(path: Path, cb: Callable[[int], None] | None = None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            if cb:
                cb(len(chunk))
    return h.hexdigest()
