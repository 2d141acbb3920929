from __future__ import annotations

from pathlib import Path

from podrepro.engine import bootstrap, hostdpkg

MIRROR = "http://mirror.invalid/debian"


def test_mmdebstrap_argv_streams_to_stdout_with_cache(tmp_path: Path) -> None:
    spec = bootstrap.BootstrapSpec("armhf", "bookworm", "minbase", None, debs_cache=tmp_path / "debs dir",
                                   installer="chroot")
    argv = bootstrap.mmdebstrap_argv(spec)
    assert argv[:5] == ["mmdebstrap", "--mode=unshare", "--variant=minbase", "--architectures=armhf", "--format=tar"]
    assert argv[-2:] == ["bookworm", "-"]          # no mirror: mmdebstrap's default
    assert "--skip=essential/unlink" in argv
    assert f"--setup-hook=sync-in '{tmp_path}/debs dir' /var/cache/apt/archives/" in argv
    assert f"--customize-hook=sync-out /var/cache/apt/archives '{tmp_path}/debs dir'" in argv
    assert not any(a.startswith("--extract-hook") for a in argv)


def test_host_dpkg_installer_resolves_and_installs_the_packages_in_a_hook(tmp_path: Path) -> None:
    import shlex

    spec = bootstrap.BootstrapSpec("armhf", "bookworm", "minbase", None, include=("gdb",),
                                   debs_cache=tmp_path / "debs", merged_usr=True)
    argv = bootstrap.mmdebstrap_argv(spec)
    # mmdebstrap sets up apt and the mounts, downloads and extracts nothing (no --include): the
    # hook resolves, downloads and installs
    assert "--variant=extract" in argv and "--variant=minbase" not in argv
    assert not [a for a in argv if a.startswith("--include")]
    assert "--setup-hook=" + bootstrap.merged_usr_hook("armhf") in argv
    hooks = [a for a in argv if a.startswith("--extract-hook=")]
    # mmdebstrap's minbase: the essential set, Priority: required and apt; plus usr-is-merged
    # (merged /usr is set up before anything is extracted, not converted by usrmerge) and the
    # profile's packages, as the line before the hook's script
    first, script = hooks[0][len("--extract-hook="):].split("\n", 1)
    assert script == hostdpkg.HOST_DPKG_HOOK
    assert shlex.split(first) == ["include=?essential ?priority(required) apt usr-is-merged gdb"]
    # the package cache is synced out after the install, by the extract phase (no customize phase)
    assert hooks[1:] == [f"--extract-hook=sync-out /var/cache/apt/archives {tmp_path}/debs"]
    assert not any(a.startswith("--customize-hook") for a in argv)
    hook = hostdpkg.HOST_DPKG_HOOK
    assert '--root="$root"' in hook and "--force-architecture" in hook and "--configure --pending" in hook
    assert 'APT_CONFIG="${MMDEBSTRAP_APT_CONFIG' in hook and "install ${include" in hook
    assert ">&2" in hook  # the tar goes to stdout: nothing else may
    # with the descriptor (as podrepro bootstraps): the hook sends the .debs, no sync-out afterwards
    piped = bootstrap.mmdebstrap_argv(bootstrap.BootstrapSpec("armhf", "bookworm", "minbase", None,
                                                              debs_cache=tmp_path / "debs", debs_fd=True))
    assert [a for a in piped if a.startswith(("--setup-hook=sync", "--extract-hook=sync", "--customize-hook=sync"))] == [
        f"--setup-hook=sync-in {tmp_path}/debs /var/cache/apt/archives/"]
    # a package name cannot break out of the line (the shell quotes it)
    odd = bootstrap.mmdebstrap_argv(bootstrap.BootstrapSpec("armhf", "bookworm", "minbase", None,
                                                            include=("x';touch /tmp/p;'",)))
    line = next(a for a in odd if a.startswith("--extract-hook="))[len("--extract-hook="):].split("\n", 1)[0]
    assert shlex.split(line) == ["include=?essential ?priority(required) apt x';touch /tmp/p;'"]


def test_host_dpkg_hook_is_valid_shell() -> None:
    import subprocess

    assert subprocess.run(["sh", "-n", "-c", hostdpkg.HOST_DPKG_HOOK]).returncode == 0


def test_every_variant_podrepro_accepts_has_a_host_dpkg_package_set() -> None:
    from podrepro.config import BY_NAME

    assert set(BY_NAME["variant"].choices) <= set(bootstrap.VARIANT_PACKAGES)
    assert set(BY_NAME["installer"].choices) == set(bootstrap.INSTALLERS)


def test_mmdebstrap_argv_with_mirror_and_includes() -> None:
    spec = bootstrap.BootstrapSpec("mipsel", "bookworm", "buildd", MIRROR, include=("gcc", "make"), installer="chroot")
    argv = bootstrap.mmdebstrap_argv(spec, output="/tmp/x.tar")
    assert argv[-3:] == ["bookworm", "/tmp/x.tar", MIRROR]
    assert "--include=gcc,make" in argv and "--variant=buildd" in argv
    assert not any(a.startswith("--setup-hook") for a in argv)


def test_host_mirror_from_deb822(tmp_path: Path) -> None:
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "a-thirdparty.sources").write_text(
        "Types: deb\nURIs: https://thirdparty.invalid/repo\nSuites: nodistro\nComponents: main\n")
    (d / "debian.sources").write_text(
        "Types: deb\n# comment\nURIs: http://mirror.invalid/debian/\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\nURIs: http://security.invalid/debian-security\nSuites: bookworm-security\nComponents: main\n")
    assert bootstrap.host_debian_mirror(paths=(), dirs=(d,)) == MIRROR


def test_host_mirror_from_one_line_format(tmp_path: Path) -> None:
    f = tmp_path / "sources.list"
    f.write_text("# deb http://old.invalid/debian buster main\n"
                 "deb [arch=amd64 signed-by=/x.gpg] https://cloud.invalid/apt cloud-sdk main\n"
                 "deb http://mirror.invalid/debian bookworm main contrib\n")
    assert bootstrap.host_debian_mirror(paths=(f,), dirs=()) == MIRROR


def test_host_mirror_absent(tmp_path: Path) -> None:
    assert bootstrap.host_debian_mirror(paths=(tmp_path / "none",), dirs=(tmp_path,)) is None


def test_disabled_deb822_stanza_is_ignored(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "x.sources").write_text("Enabled: no\nTypes: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm\nComponents: main\n")
    assert bootstrap.host_debian_mirror(paths=(), dirs=(d,)) is None


def test_failure_classification() -> None:
    assert bootstrap.classify_failure("E: Failed to fetch http://x/y  Connection timed out") == "transient"
    assert bootstrap.classify_failure("W: Some index files failed to download") == "transient"
    assert bootstrap.classify_failure("tar: write error: No space left on device") == "nospace"
    assert bootstrap.classify_failure("E: Unable to locate package nosuchpkg") == "fatal"


def test_merged_usr_is_set_up_before_extraction_from_bookworm_on(tmp_path: Path) -> None:
    import subprocess

    # debootstrap's and mmdebstrap's table: bin, sbin, lib, and the arch's own lib dirs
    root = tmp_path / "root"
    root.mkdir()
    assert subprocess.run(["sh", "-c", bootstrap.merged_usr_hook("amd64"), "hook", str(root)]).returncode == 0
    links = {p.name: str(p.readlink()) for p in root.iterdir() if p.is_symlink()}
    assert sorted(p.name for p in root.iterdir() if not p.is_symlink()) == ["usr"]
    assert links == {d: f"usr/{d}" for d in ("bin", "sbin", "lib", "lib32", "lib64", "libx32")}
    assert all((root / "usr" / d).is_dir() for d in links)
    assert "lib64" not in bootstrap.merged_usr_hook("armhf") and "lib32" in bootstrap.merged_usr_hook("s390x")
    # bullseye and older: init-system-helpers has no usr-is-merged dependency; nothing changes there
    old = _spec_of("arm", "bullseye")
    assert "usr-is-merged" not in bootstrap.host_dpkg_packages(old)
    assert not any(a.startswith("--setup-hook=ln") for a in bootstrap.mmdebstrap_argv(old))
    trixie = _spec_of("arm64", "trixie")
    assert "usr-is-merged" in bootstrap.host_dpkg_packages(trixie)
    assert "--setup-hook=" + bootstrap.merged_usr_hook("arm64") in bootstrap.mmdebstrap_argv(trixie)
    # the chroot installer is mmdebstrap's own way, unchanged (even if asked)
    chroot = bootstrap.mmdebstrap_argv(bootstrap.BootstrapSpec("armhf", "bookworm", "minbase", None, installer="chroot",
                                                               merged_usr=True))
    assert not any("usr-is-merged" in a for a in chroot)


def _spec_of(alias: str, suite: str) -> bootstrap.BootstrapSpec:
    """The spec a bootstrap of the default recipe for ``alias`` and ``suite`` runs (as images.base makes it)."""
    from podrepro.arches import lookup
    from podrepro.images.recipe import base_recipe

    r = base_recipe(lookup(alias), suite, "minbase")
    return bootstrap.BootstrapSpec(r.arch.debian, suite, "minbase", None,
                                   merged_usr=r.data.get("merged_usr") == "usr-is-merged")


def test_the_recipe_says_how_usr_is_merged() -> None:
    from podrepro.arches import lookup
    from podrepro.images.recipe import BaseSource, base_recipe

    arm = lookup("arm")
    assert base_recipe(arm, "bookworm", "minbase").data["merged_usr"] == "usr-is-merged"
    assert "merged_usr" not in base_recipe(arm, "bullseye", "minbase").data
    assert "merged_usr" not in base_recipe(arm, "bookworm", "minbase", installer="chroot").data
    assert "merged_usr" not in base_recipe(arm, "bookworm", "minbase", BaseSource("rootfs", "/x", "0" * 64)).data


def test_apts_refusal_is_found_and_the_echoed_hook_is_not_taken_for_its_progress() -> None:
    log = ("I: running --extract-hook in shell: sh -c 'include=...\n"
           '  echo "I: podrepro: unpacking $(echo $first $ess $rest | wc -w) packages with the host\'s dpkg" >&2\n'
           "E: Unable to locate package nosuchpkg-xyz\n"
           "E: setup failed: E: command failed: include=...\n"
           "E: mmdebstrap failed to run\n")
    assert bootstrap.apt_refusal(log) == "Unable to locate package nosuchpkg-xyz"
    assert bootstrap.apt_refusal("E: Package 'gcc-99' has no installation candidate\n") == \
        "Package 'gcc-99' has no installation candidate"
    assert bootstrap.apt_refusal("E: Failed to fetch http://x/y.deb  Connection timed out\n") is None
    # the hook's text, as mmdebstrap echoes it, is not the hook at work
    assert bootstrap.HOOK_INSTALLING.search(log) is None
    assert bootstrap.HOOK_INSTALLING.search(log + "I: podrepro: unpacking 88 packages with the host's dpkg\n")
