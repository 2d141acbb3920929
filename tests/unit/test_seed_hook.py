"""The host-dpkg extract hook's seeding, run for real (sh, tar, find, awk, coreutils) against a
fake root, with dpkg, dpkg-deb and dpkg-query replaced by stubs that keep a one-line-per-package
status file. The e2e suite runs the same hook inside mmdebstrap with the real tools."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from podrepro.engine import hostdpkg, standins

STATUS = "var/lib/dpkg/stub-status"  # "ii  name version arch" per line

# dpkg-deb --show --showformat=F FILE: the fields kept next to the fake .deb (tab-separated);
# dpkg-deb --fsys-tarfile FILE: a tar of the payload dir kept next to it
# (a .deb is known by its name: the hook's decompressed copy of one, in .podrepro-plain, is the
# same package as the original in the package cache)
DPKG_DEB = """#!/bin/sh
for a; do f="$a"; done
orig="$STUB_ROOT/var/cache/apt/archives/${f##*/}"
case "$1" in
  --show) cat "$orig.fields" ;;
  --fsys-tarfile) echo "$f" >> "$STUB_EXTRACTED"; tar -C "$orig.payload" -cf - . ;;
  *) exit 2 ;;
esac
"""

# apt-get: the resolved .debs, as apt's Pre-Install-Pkgs hook gets them (absolute, in the root),
# to fd 7; its arguments logged
APT_GET = """#!/bin/sh
echo "apt-get APT_CONFIG=$APT_CONFIG $*" >> "$STUB_LOG"
for f in "$STUB_ROOT"/stash/*.deb; do [ ! -e "$f" ] || mv "$f" "$STUB_ROOT/var/cache/apt/archives/"; done
for d in $STUB_DEBS; do echo "$STUB_ROOT$d" >&7; done
"""

# -W -f '${Version}' PKG: the version in $STUB_VERSIONS ("pkg=version ..."); -W: the status file
DPKG_QUERY = """#!/bin/sh
for a; do case "$a" in --admindir=*) admin="${a#--admindir=}" ;; esac; done
version=; for a; do [ "$a" = '${Version}' ] && version=1; done
case "$version" in 1)
  for a; do pkg="$a"; done
  for kv in ${STUB_VERSIONS:-}; do [ "${kv%%=*}" = "$pkg" ] && { printf '%s' "${kv#*=}"; exit 0; }; done
  exit 1 ;;
esac
cat "$admin/stub-status" 2>/dev/null || true
"""

# --unpack records each package as installed (replacing an older version), unless its name is in
# $STUB_REFUSE; --configure runs $STUB_POSTINST, if any, as a maintainer script would run in the
# chroot (the list the hook names for the py_compile stand-in is in the root); every call is logged
DPKG = """#!/bin/sh
echo "dpkg $*" >> "$STUB_LOG"
root=; unpack=; configure=
for a; do
  case "$a" in --root=*) root="${a#--root=}" ;; --unpack) unpack=1 ;; --configure) configure=1 ;; esac
done
if [ -n "$configure" ] && [ -n "${STUB_POSTINST:-}" ]; then
  PODREPRO_PYC_LIST="$root${PODREPRO_PYC_LIST:-}" sh -c "$STUB_POSTINST"
fi
[ -n "$unpack" ] || exit 0
for a; do
  case "$a" in *.deb) ;; *) continue ;; esac
  set -- $(cat "$root/var/cache/apt/archives/${a##*/}.fields")
  case " ${STUB_REFUSE:-} " in *" $1 "*) continue ;; esac
  grep -v "^ii  $1 " "$root/%s" > "$root/%s.new" || true
  echo "ii  $1 $2 $3" >> "$root/%s.new"
  mv "$root/%s.new" "$root/%s"
done
""" % ((STATUS,) * 5)


def _stubs(tmp: Path) -> Path:
    bindir = tmp / "stubs"
    bindir.mkdir()
    for name, text in (("dpkg", DPKG), ("dpkg-deb", DPKG_DEB), ("dpkg-query", DPKG_QUERY), ("apt-get", APT_GET)):
        (bindir / name).write_text(text)
        (bindir / name).chmod(0o755)
    return bindir


DEPENDS = {"base-passwd": "libc6 (>= 2.34)", "gcc-12": "libc6 (>= 2.36), cpp-12 | gcc-12-base:any"}


def _ar(members: list[tuple[str, bytes]]) -> bytes:
    out = b"!<arch>\n"
    for name, data in members:
        out += f"{name:<16}{1700000000:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode() + data
        out += b"\n" if len(data) % 2 else b""
    return out


def _fresh_root(tmp: Path, want: list[str], cached: tuple[str, ...] | None = None,
                ar: bool = False) -> tuple[Path, list[str]]:
    """A root as mmdebstrap hands it to the extract hook (its apt setup, the package cache synced
    in, nothing extracted) and the .debs apt resolves ("/var/cache/apt/archives/..."). The
    packages not in ``cached`` (all by default) are "downloaded" by the apt-get stub. With ``ar``
    the .debs are ar archives the hook's decompressing copier takes (its dpkg-deb: the stub)."""
    root = tmp / "root"
    for d in ("etc/apt/apt.conf.d", "var/cache/apt/archives", "var/lib/dpkg", "var/lib/apt/lists", "usr/bin",
              "tmp", "dev", "proc", "sys"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "etc/apt/sources.list").write_text("deb NEW-RUN bookworm main\n")
    (root / "etc/apt/apt.conf.d/00mmdebstrap").write_text("new run\n")
    (root / "tmp/mmdebstrap.apt.conf.X").write_text("new run's apt config\n")
    (root / "dev/mounted-here").write_text("must survive\n")
    (root / STATUS).write_text("")
    debs = []
    for spec in want:  # "name version arch essential"
        name, version, arch = spec.split()[:3]
        essential = spec.split()[3] if len(spec.split()) == 4 else ""
        rel = f"var/cache/apt/archives/{name}_{version}_{arch}.deb"
        fake = _ar([("debian-binary", b"2.0\n"), ("control.tar.xz", b"control"), ("data.tar.xz", b"xz data")]) \
            if ar else b"not really a deb\n"
        if cached is None or name in cached:
            (root / rel).write_bytes(fake)
        else:
            (root / "stash").mkdir(exist_ok=True)
            (root / "stash" / Path(rel).name).write_bytes(fake if ar else f"{name}, downloaded\n".encode())
        (root / (rel + ".fields")).write_text(
            "\t".join((name, version, arch, essential, "optional", DEPENDS.get(name, ""))) + "\n")
        (root / (rel + ".payload/usr/bin")).mkdir(parents=True)
        (root / (rel + f".payload/usr/bin/extracted-{name}")).write_text("extracted\n")
        debs.append("/" + rel)
    return root, debs


def _extracted(root: Path) -> list[str]:
    return sorted(p.name[len("extracted-"):] for p in (root / "usr/bin").glob("extracted-*"))


def _seed_tar(installed: list[str]) -> bytes:
    files = {
        "etc/apt/sources.list": "deb OLD-RUN bookworm main\n",
        "usr/bin/from-seed": "configured\n",
        "etc/configured-by-postinst": "yes\n",
        STATUS: "".join(f"{line}\n" for line in installed),
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for d in ("etc", "etc/apt", "usr", "usr/bin", "var", "var/lib", "var/lib/dpkg", "tmp", "dev"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            t.addfile(info)
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _run(tmp: Path, root: Path, debs: list[str], seed: bytes | None, refuse: str = "", pass_fds: tuple[int, ...] = (),
         hook: Callable[[str], str] = lambda text: text, **extra: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bindir = _stubs(tmp)
    log = tmp / "dpkg.log"
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}", STUB_LOG=str(log), STUB_REFUSE=refuse,
               STUB_DEBS=" ".join(debs), STUB_ROOT=str(root), STUB_EXTRACTED=str(tmp / "extracted"),
               MMDEBSTRAP_APT_CONFIG="/tmp/mmdebstrap.apt.conf.X")
    env.update(extra)
    env.pop(hostdpkg.SEED_FD_ENV, None)
    (tmp / "seed.tar").write_bytes(seed or b"")
    if seed is not None:
        env[hostdpkg.SEED_FD_ENV] = "0"  # as podrepro passes it: mmdebstrap's standard input
    with open(tmp / "seed.tar", "rb") as stdin:
        cp = subprocess.run(["sh", "-c", hook(hostdpkg.host_dpkg_hook(["?essential", "gcc-12"])), "hook", str(root)], env=env,
                            text=True,
                            stdin=stdin, capture_output=True, timeout=60, pass_fds=pass_fds)
    calls = log.read_text().splitlines() if log.exists() else []
    return cp, calls


def _unpacked(calls: list[str]) -> list[str]:
    return sorted(Path(a).name for c in calls if "--unpack" in c for a in c.split() if a.endswith(".deb"))


WANT = ["base-passwd 3.6.1 armhf yes", "libc6 2.36-9 armhf ", "gcc-12 12.2.0-14 armhf ", "make 4.3-4.1 armhf "]


def test_a_usable_seed_replaces_the_root_and_only_the_missing_packages_are_installed(tmp_path: Path) -> None:
    root, debs = _fresh_root(tmp_path, WANT)
    # the seed has base-passwd and libc6, libc6 in an older version: libc6 is upgraded, the rest added
    cp, calls = _run(tmp_path, root, debs, _seed_tar(["ii  base-passwd 3.6.1 armhf", "ii  libc6 2.36-8 armhf"]))
    assert cp.returncode == 0, cp.stderr
    assert "seeded from an earlier base: 2 packages installed already, 3 to install" in cp.stderr
    assert _unpacked(calls) == ["gcc-12_12.2.0-14_armhf.deb", "libc6_2.36-9_armhf.deb", "make_4.3-4.1_armhf.deb"]
    # the seed's configured files replaced the extracted ones ...
    assert (root / "usr/bin/from-seed").read_text() == "configured\n"
    assert (root / "etc/configured-by-postinst").exists()
    assert _extracted(root) == []  # the seed is a configured system: nothing is extracted first
    # ... but what mmdebstrap set up for this run is this run's, and its mounts were not touched
    assert (root / "etc/apt/sources.list").read_text() == "deb NEW-RUN bookworm main\n"
    assert (root / "etc/apt/apt.conf.d/00mmdebstrap").read_text() == "new run\n"
    assert (root / "tmp/mmdebstrap.apt.conf.X").exists() and not (root / "tmp/tmp").exists()
    assert len(list((root / "var/cache/apt/archives").glob("*.deb"))) == len(WANT)
    assert (root / "dev/mounted-here").read_text() == "must survive\n"
    # and the hook's own files are gone
    assert not [p.name for p in root.iterdir() if p.name.startswith(".podrepro")]


@pytest.mark.parametrize("seed_status, why", [
    ("ii  gdb 13.1 armhf", "it has gdb, which this recipe does not install"),
    ("iU  libc6 2.36-9 armhf", "its libc6 is not fully installed"),
])
def test_an_unusable_seed_is_not_used(tmp_path: Path, seed_status: str, why: str) -> None:
    root, debs = _fresh_root(tmp_path, WANT)
    cp, calls = _run(tmp_path, root, debs, _seed_tar(["ii  base-passwd 3.6.1 armhf", seed_status]))
    assert cp.returncode == 0, cp.stderr
    assert f"not seeding from the earlier base: {why}" in cp.stderr
    assert _unpacked(calls) == sorted(Path(d).name for d in debs)
    assert _extracted(root) == ["base-passwd", "libc6"] and not (root / "usr/bin/from-seed").exists()
    assert (root / "etc/apt/sources.list").read_text() == "deb NEW-RUN bookworm main\n"
    assert not [p.name for p in root.iterdir() if p.name.startswith(".podrepro")]


def test_an_unreadable_seed_stream_falls_back_to_installing_everything(tmp_path: Path) -> None:
    root, debs = _fresh_root(tmp_path, WANT)
    cp, calls = _run(tmp_path, root, debs, b"this is not a tar archive" * 100)
    assert cp.returncode == 0, cp.stderr
    assert "not seeding from the earlier base: its root filesystem could not be read" in cp.stderr
    assert len(_unpacked(calls)) == len(WANT)
    assert _extracted(root) == ["base-passwd", "libc6"]


def test_without_a_seed_everything_is_installed_base_passwd_first_then_essential(tmp_path: Path) -> None:
    root, debs = _fresh_root(tmp_path, WANT)
    cp, calls = _run(tmp_path, root, debs, None)
    assert cp.returncode == 0, cp.stderr
    # apt resolved the hook's packages with mmdebstrap's apt setup
    assert calls[0].startswith("apt-get APT_CONFIG=/tmp/mmdebstrap.apt.conf.X --yes") and \
        calls[0].endswith(" install ?essential gcc-12"), calls[0]
    unpack = next(c for c in calls if "--unpack" in c)
    order = [Path(a).name.split("_")[0] for a in unpack.split() if a.endswith(".deb")]
    assert order[0] == "base-passwd" and sorted(order) == sorted(w.split()[0] for w in WANT)
    assert any("--configure --pending" in c for c in calls)
    # before dpkg unpacks: the files of the essential package and of what it depends on, only
    assert _extracted(root) == ["base-passwd", "libc6"]
    assert (tmp_path / "extracted").read_text().split() == [d.lstrip("/") for d in debs[:2]]
    assert not [p.name for p in root.iterdir() if p.name.startswith(".podrepro")]


MANY = ["base-passwd 3.6.1 armhf yes", "libc6 2.36-9 armhf ", "gcc-12 12.2.0-14 armhf ",
        *(f"lib{i} 1.0-{i} armhf " for i in range(17)), "dash 0.5 armhf yes"]


def test_dpkg_unpacks_the_decompressed_copies_in_order_in_runs_of_at_least_eight(tmp_path: Path) -> None:
    root, debs = _fresh_root(tmp_path, MANY, ar=True)
    cp, calls = _run(tmp_path, root, debs, None)
    assert cp.returncode == 0, cp.stderr
    assert "W: podrepro" not in cp.stderr
    runs = [[a for a in c.split() if a.endswith(".deb")] for c in calls if "--unpack" in c]
    # every package once, in one dpkg run's order (base-passwd, the essential ones, the rest) ...
    order = [Path(a).name.split("_")[0] for run in runs for a in run]
    assert order == ["base-passwd", "dash", "libc6", "gcc-12", *(f"lib{i}" for i in range(17))], order
    # ... each one the decompressed copy (dpkg reads plain tar), in runs of 8 or more but the last
    assert all(a.startswith(f"{root}/.podrepro-plain/") for run in runs for a in run), runs
    assert all(len(run) >= 8 for run in runs[:-1]) and runs[-1], runs
    assert f"I: podrepro: dpkg unpacked {len(MANY)} of {len(MANY)} packages from copies decompressed beforehand\n" \
        in cp.stderr
    assert "I: podrepro: 0 dpkg-maintscript-helper calls and 0 of deb-systemd-helper had one answer in a fresh" \
        " install" in cp.stderr  # (the stub runs no maintainer script)
    # the essential set was extracted from the originals, and the copier decompressed each .deb
    # once, in dpkg's order (each dpkg-deb --fsys-tarfile of an original is one or the other)
    extracted = [Path(e).name.split("_")[0] for e in (tmp_path / "extracted").read_text().split()]
    assert sorted(extracted) == sorted(["base-passwd", "libc6", "dash", *order]), extracted
    assert [e for e in extracted if e not in ("base-passwd", "libc6", "dash")] == \
        [o for o in order if o not in ("base-passwd", "libc6", "dash")]
    # the originals stay in the package cache as they were; the copies are gone with the hook's files
    assert all((root / d.lstrip("/")).read_bytes().endswith(b"xz data\n") for d in debs)
    assert not [p.name for p in root.iterdir() if p.name.startswith(".podrepro")]


def test_a_deb_the_copier_cannot_convert_is_unpacked_from_the_original(tmp_path: Path) -> None:
    root, debs = _fresh_root(tmp_path, MANY, ar=True)
    broken = root / debs[5].lstrip("/")
    broken.write_bytes(broken.read_bytes()[:70])  # cut inside the first member
    cp, calls = _run(tmp_path, root, debs, None)
    assert cp.returncode == 0, cp.stderr
    assert f"W: podrepro: {debs[5].lstrip('/')} is unpacked from its compressed data (cut short)" in cp.stderr
    unpacked = [a for c in calls if "--unpack" in c for a in c.split() if a.endswith(".deb")]
    assert len(unpacked) == len(MANY) and debs[5].lstrip("/") in unpacked
    assert sum(1 for a in unpacked if "/.podrepro-plain/" in a) == len(MANY) - 1
    assert f"dpkg unpacked {len(MANY) - 1} of {len(MANY)} packages from copies" in cp.stderr
    assert not [p.name for p in root.iterdir() if p.name.startswith(".podrepro")]


def test_a_copier_held_back_by_its_window_and_a_deb_it_cannot_read_do_not_stall_dpkg(tmp_path: Path) -> None:
    root, debs = _fresh_root(tmp_path, MANY, ar=True)
    broken = root / debs[11].lstrip("/")
    broken.write_text("not an archive\n")
    ahead = f'"$plain" {standins.REPACK_AHEAD} '
    assert ahead in hostdpkg.HOST_DPKG_HOOK
    # a window of one byte: the copier keeps 8 copies ahead of dpkg and no more
    cp, calls = _run(tmp_path, root, debs, None, hook=lambda text: text.replace(ahead, '"$plain" 1 '))
    assert cp.returncode == 0, cp.stderr
    unpacked = [a for c in calls if "--unpack" in c for a in c.split() if a.endswith(".deb")]
    assert [Path(a).name for a in unpacked] == [Path(d).name for d in (debs[0], debs[-1], *debs[1:-1])]
    assert sum(1 for a in unpacked if "/.podrepro-plain/" not in a) == 1  # the broken one, as it is
    assert not [p.name for p in root.iterdir() if p.name.startswith(".podrepro")]


def test_when_the_copier_dies_dpkg_unpacks_the_originals(tmp_path: Path) -> None:
    root, debs = _fresh_root(tmp_path, MANY, ar=True)
    dying = tmp_path / "dying"
    dying.mkdir()
    (dying / "perl").write_text("#!/bin/sh\nkill -9 $$\n")  # killed before it wrote anything
    (dying / "perl").chmod(0o755)
    cp, calls = _run(tmp_path, root, debs, None, PATH=f"{dying}:{tmp_path / 'stubs'}:{os.environ['PATH']}")
    assert cp.returncode == 0, cp.stderr
    unpacked = [a for c in calls if "--unpack" in c for a in c.split() if a.endswith(".deb")]
    assert unpacked == [d.lstrip("/") for d in (debs[0], debs[-1], *debs[1:-1])]  # all the originals, in order
    assert f"dpkg unpacked 0 of {len(MANY)} packages from copies" in cp.stderr
    assert not [p.name for p in root.iterdir() if p.name.startswith(".podrepro")]


@pytest.mark.parametrize("seed", [False, True])
def test_the_result_must_be_exactly_the_resolved_set(tmp_path: Path, seed: bool) -> None:
    root, debs = _fresh_root(tmp_path, WANT)
    tar = _seed_tar(["ii  base-passwd 3.6.1 armhf"]) if seed else None
    cp, _ = _run(tmp_path, root, debs, tar, refuse="make")  # dpkg "fails" to install make
    assert cp.returncode == 1
    assert "the installed packages are not the resolved set: not installed: make" in cp.stderr


def test_apt_resolving_nothing_is_an_error(tmp_path: Path) -> None:
    root, _ = _fresh_root(tmp_path, WANT)
    cp, calls = _run(tmp_path, root, [], None)
    assert cp.returncode == 1 and "apt resolved no packages" in cp.stderr, cp.stderr
    assert not [c for c in calls if "--unpack" in c]


def test_the_extracted_set_is_the_essential_and_required_closure(tmp_path: Path) -> None:
    rows = [  # file, package, version, arch, essential, priority, Pre-Depends + Depends
        ("f/a", "a", "1", "armhf", "yes", "required", ", libc6 (>= 2.36), dash | bash"),
        ("f/libc6", "libc6", "2", "armhf", "", "optional", ", libgcc-s1:any"),
        ("f/libgcc", "libgcc-s1", "1", "armhf", "", "optional", ", "),
        ("f/dash", "dash", "1", "armhf", "", "optional", "debianutils (>= 5), "),
        ("f/debianutils", "debianutils", "1", "armhf", "", "optional", ", "),
        ("f/gcc", "gcc-12", "1", "armhf", "", "optional", ", libc6, cpp-12"),
        ("f/cpp", "cpp-12", "1", "armhf", "", "optional", ", "),
        ("f/req", "tzdata", "1", "all", "", "required", ", debconf (>= 0.5) | debconf-2.0"),
        ("f/debconf", "debconf", "1", "all", "", "important", ", "),
    ]
    (tmp_path / "fields").write_text("".join("\t".join(r) + "\n" for r in rows))
    cp = subprocess.run(["awk", "-F", "\t", hostdpkg.DEPS_AWK, str(tmp_path / "fields")], capture_output=True,
                        text=True, check=True)
    # in the input's order; the compiler and what only it needs are not extracted
    assert cp.stdout.split() == ["f/a", "f/libc6", "f/libgcc", "f/dash", "f/debianutils", "f/req", "f/debconf"]


def _awk(program: str, tmp: Path, have: str, want: str) -> tuple[str, str]:
    (tmp / "have").write_text(have)
    (tmp / "want").write_text(want)
    delta = tmp / "delta"
    delta.write_text("")
    cp = subprocess.run(["awk", "-v", f"delta={delta}", program, str(tmp / "have"), str(tmp / "want")],
                        capture_output=True, text=True, check=True)
    return cp.stdout.strip(), delta.read_text()


def test_seed_check_lists_new_and_changed_packages(tmp_path: Path) -> None:
    out, delta = _awk(hostdpkg.SEED_AWK, tmp_path, "ii  a 1 armhf\nii  b 1 all\n",
                      "x/a.deb a 1 armhf \nx/b.deb b 2 all \nx/c.deb c 1:1.0 armhf yes\n")
    assert out == "ok"
    assert delta.splitlines() == ["x/b.deb b 2 all ", "x/c.deb c 1:1.0 armhf yes"]


def test_seed_check_compares_architecture_too(tmp_path: Path) -> None:
    out, delta = _awk(hostdpkg.SEED_AWK, tmp_path, "ii  a 1 armel\n", "x/a.deb a 1 armhf \n")
    assert out == "ok" and delta.split()[1:4] == ["a", "1", "armhf"]


def test_final_check_reports_every_kind_of_difference(tmp_path: Path) -> None:
    out, _ = _awk(hostdpkg.CHECK_AWK, tmp_path, "ii  a 1 armhf\niF  b 1 armhf\nii  c 1 armhf\nii  z 1 armhf\n",
                  "x a 1 armhf \nx b 1 armhf \nx c 2 armhf \nx d 1 armhf \n")
    assert sorted(out.splitlines()) == sorted([
        "not fully installed (iF): b", "installed c 1 armhf, resolved 2 armhf", "not installed: d",
        "installed but not resolved: z"])
    out, _ = _awk(hostdpkg.CHECK_AWK, tmp_path, "ii  a 1 armhf\n", "x a 1 armhf \n")
    assert out == ""


# ---- Python's byte-compilation, natively -----------------------------------------------------

PYV = f"{sys.version_info[0]}.{sys.version_info[1]}"
TAG = sys.implementation.cache_tag


def _expected_pyc(src: Path, dfile: str, optimize: int = -1) -> bytes:
    import py_compile
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "x.pyc"
        py_compile.compile(str(src), cfile=str(out), dfile=dfile, doraise=True, optimize=optimize,
                           invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)
        return out.read_bytes()


def test_the_py_compile_stand_in_writes_down_what_it_is_asked(tmp_path: Path) -> None:
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "py_compile.py").write_text(standins.PYC_SHIM)
    listed = tmp_path / "list"
    env = dict(os.environ, PODREPRO_PYC_LIST=str(listed))
    env.pop("SOURCE_DATE_EPOCH", None)

    def run(*args: str, stdin: str = "") -> None:
        subprocess.run([sys.executable, "-E", "-S", *args], env=env, cwd=shim, check=True, capture_output=True,
                       text=True, input=stdin)

    # python3.X's postinst: the script with the files; py3compile: -m py_compile - with names on stdin, -O
    run(str(shim / "py_compile.py"), "/usr/lib/a.py", "/usr/lib/b.py")
    run("-O", "-m", "py_compile", "-", stdin="/usr/lib/c.py\n")
    # compileall, with a cfile and a dfile of its own, in checked-hash mode
    run("-c", "import py_compile; py_compile.compile('/x/d.py', cfile='/x/__pycache__/d.pyc', dfile='/shown/d.py', "
        "optimize=2, invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)")
    rows = [line.split("\t") for line in listed.read_text().splitlines()]
    assert rows == [
        [PYV, "0", "TIMESTAMP", "/usr/lib/a.py", "", ""],
        [PYV, "0", "TIMESTAMP", "/usr/lib/b.py", "", ""],
        [PYV, "1", "TIMESTAMP", "/usr/lib/c.py", "", ""],
        [PYV, "2", "CHECKED_HASH", "/x/d.py", "/x/__pycache__/d.pyc", "/shown/d.py"],
    ]
    # nothing compiled (python itself caches the stand-in when it is imported: the hook keeps
    # py_compile's own cache aside meanwhile)
    assert not [p for p in tmp_path.rglob("*.pyc") if not p.name.startswith("py_compile.")]
    # without the list it refuses, loudly (a postinst that fails, not files silently left out)
    env.pop("PODREPRO_PYC_LIST")
    cp = subprocess.run([sys.executable, "-E", "-S", str(shim / "py_compile.py"), "/usr/lib/a.py"], env=env,
                        capture_output=True, text=True)
    assert cp.returncode != 0 and "PODREPRO_PYC_LIST is not set" in cp.stderr


def test_native_byte_compilation_gives_the_targets_files_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    lib = root / f"usr/lib/python{PYV}"
    lib.mkdir(parents=True)
    (lib / "mod.py").write_text("def f():\n    assert True\n    return __file__\n")
    (root / f"etc/python{PYV}").mkdir(parents=True)
    (root / f"etc/python{PYV}/sitecustomize.py").write_text("# the target's own\n")
    # an absolute link, as Debian ships sitecustomize.py: resolved inside the root, never the host's
    (lib / "sitecustomize.py").symlink_to(f"/etc/python{PYV}/sitecustomize.py")
    (lib / "escape.py").symlink_to("/../../../../../../etc/hostname")  # clamped at the root: not there
    listed = tmp_path / "list"
    rows = [
        (PYV, "0", "TIMESTAMP", f"/usr/lib/python{PYV}/mod.py", "", ""),
        (PYV, "0", "TIMESTAMP", f"/usr/lib/python{PYV}/mod.py", "", ""),  # asked twice: compiled once
        (PYV, "1", "TIMESTAMP", f"/usr/lib/python{PYV}/mod.py", "", ""),
        (PYV, "0", "TIMESTAMP", f"/usr/lib/python{PYV}/sitecustomize.py", "", ""),
        ("2.7", "0", "TIMESTAMP", "/usr/lib/python2.7/old.py", "", ""),  # another version's: not this run's
    ]
    listed.write_text("".join("\t".join(r) + "\n" for r in rows))
    cp = subprocess.run([sys.executable, "-I", "-S", "-c", standins.PYC_NATIVE, str(root), str(listed), PYV],
                        capture_output=True, text=True)
    assert cp.returncode == 0, cp.stderr
    assert f"byte-compiled 3 files of Python {PYV} natively" in cp.stderr
    cache = lib / "__pycache__"
    assert (cache / f"mod.{TAG}.pyc").read_bytes() == _expected_pyc(lib / "mod.py", f"/usr/lib/python{PYV}/mod.py")
    assert (cache / f"mod.{TAG}.opt-1.pyc").read_bytes() == _expected_pyc(
        lib / "mod.py", f"/usr/lib/python{PYV}/mod.py", optimize=1)
    assert (cache / f"sitecustomize.{TAG}.pyc").read_bytes() == _expected_pyc(
        root / f"etc/python{PYV}/sitecustomize.py", f"/usr/lib/python{PYV}/sitecustomize.py")
    assert not (root / "usr/lib/python2.7").exists()
    # a link that leads out of the root finds nothing there: an error, not the host's file
    listed.write_text("\t".join((PYV, "0", "TIMESTAMP", f"/usr/lib/python{PYV}/escape.py", "", "")) + "\n")
    cp = subprocess.run([sys.executable, "-I", "-S", "-c", standins.PYC_NATIVE, str(root), str(listed), PYV],
                        capture_output=True, text=True)
    assert cp.returncode != 0 and not (cache / f"escape.{TAG}.pyc").exists()


@pytest.mark.parametrize("same_version", [True, False])
def test_the_hook_byte_compiles_natively_only_with_the_targets_exact_version(tmp_path: Path,
                                                                             same_version: bool) -> None:
    import platform

    root, debs = _fresh_root(tmp_path, WANT)
    lib = root / f"usr/lib/python{PYV}"
    lib.mkdir(parents=True)
    (lib / "py_compile.py").write_text("# the target's own py_compile, here a stub that compiles nothing\n")
    (lib / "mod.py").write_text("X = 1\n")
    (lib / "__pycache__").mkdir()
    (lib / "__pycache__" / f"py_compile.{TAG}.pyc").write_bytes(b"the seed's own, compiled by the target")
    stubs = tmp_path / "pystub"
    stubs.mkdir()
    (stubs / f"python{PYV}").write_text(f"#!/bin/sh\nexec {sys.executable} \"$@\"\n")
    (stubs / f"python{PYV}").chmod(0o755)
    version = platform.python_version() if same_version else "9.9.9"
    # the postinst of python3.X: the target's python runs py_compile.py with the files (here the
    # host's, on the root's path: there is no chroot in a unit test)
    # (and py3compile's way, -m py_compile with the names on standard input, which makes python
    # cache the module it runs)
    postinst = (f"{sys.executable} -E -S {lib}/py_compile.py /usr/lib/python{PYV}/mod.py && "
                f"echo /usr/lib/python{PYV}/mod.py | (cd {lib} && {sys.executable} -E -S -O -m py_compile -)")
    cp, _ = _run(tmp_path, root, debs, None, STUB_VERSIONS=f"libpython{PYV}-minimal={version}-1+deb12u1",
                 STUB_POSTINST=postinst, PATH=f"{tmp_path / 'stubs'}:{stubs}:{os.environ['PATH']}")
    assert cp.returncode == 0, cp.stderr
    # the target's py_compile.py is its own again, and the hook's list is gone
    assert (lib / "py_compile.py").read_text().startswith("# the target's own py_compile")
    assert not (lib / "py_compile.py.podrepro-real").exists() and not (root / ".podrepro-pyc").exists()
    pyc = lib / "__pycache__" / f"mod.{TAG}.pyc"
    if same_version:
        # py_compile's own cache is what it was (not the stand-in's)
        assert sorted(p.name for p in (lib / "__pycache__").glob("py_compile.*")) == [f"py_compile.{TAG}.pyc"]
        assert (lib / "__pycache__" / f"py_compile.{TAG}.pyc").read_bytes() == b"the seed's own, compiled by the target"
        assert f"byte-compiled 2 files of Python {PYV} natively" in cp.stderr, cp.stderr
        assert pyc.read_bytes() == _expected_pyc(lib / "mod.py", f"/usr/lib/python{PYV}/mod.py")
        assert (lib / "__pycache__" / f"mod.{TAG}.opt-1.pyc").read_bytes() == _expected_pyc(
            lib / "mod.py", f"/usr/lib/python{PYV}/mod.py", optimize=1)
    else:  # the postinst ran the target's own py_compile (which compiles nothing here)
        assert "natively" not in cp.stderr and not pyc.exists()


# ---- the downloaded .debs, to podrepro's package cache while dpkg configures --------------------

def test_the_hook_sends_only_the_packages_it_downloaded(tmp_path: Path) -> None:
    import tarfile

    root, debs = _fresh_root(tmp_path, WANT, cached=("libc6", "make"))
    r, w = os.pipe()
    high = os.dup2(w, 23)  # podrepro's pipe may well be above 9, which sh cannot redirect
    os.close(w)
    w = high
    try:
        cp, _ = _run(tmp_path, root, debs, None, pass_fds=(w,), PODREPRO_DEBS_FD=str(w))
    finally:
        os.close(w)
    assert cp.returncode == 0, cp.stderr
    with os.fdopen(r, "rb") as pipe, tarfile.open(fileobj=pipe, mode="r|") as tar:
        sent = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]
    assert sent == {"base-passwd_3.6.1_armhf.deb": b"base-passwd, downloaded\n",
                    "gcc-12_12.2.0-14_armhf.deb": b"gcc-12, downloaded\n"}
    assert "could not be sent" not in cp.stderr
    assert not [p.name for p in root.iterdir() if p.name.startswith(".podrepro")]


def _tar_of(members: list[tuple[str, bytes | str]]) -> bytes:
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, what in members:
            info = tarfile.TarInfo(name)
            if isinstance(what, str):  # a symbolic link to it
                info.type, info.linkname = tarfile.SYMTYPE, what
                t.addfile(info)
            else:
                info.size = len(what)
                t.addfile(info, io.BytesIO(what))
    return buf.getvalue()


@pytest.mark.parametrize("cut", [False, True])
def test_the_package_cache_takes_plain_deb_files_only_and_never_half_of_one(tmp_path: Path, cut: bool) -> None:
    from podrepro.images.base import _DebsReceiver

    cache = tmp_path / "debs"
    cache.mkdir()
    data = _tar_of([("gcc-12_12.2.0-14_armhf.deb", b"x" * 300_000), ("../evil_1_all.deb", b"evil"),
                    ("sub/dir_1_all.deb", b"nested"), ("link_1_all.deb", "/etc/passwd"), ("notes.txt", b"no"),
                    ("make_4.3-4.1_armhf.deb", b"m" * 5000)])
    if cut:  # the hook killed halfway through gcc's file
        data = data[:100_000]
    rec = _DebsReceiver(cache)
    w = os.dup(rec.write_fd)  # the writer: mmdebstrap's hook, here this test
    rec.started()
    with os.fdopen(w, "wb") as out:
        out.write(data)
    stored, trouble = rec.finish()
    names = sorted(p.name for p in cache.iterdir())
    if cut:
        assert names == [] and stored == 0  # no partial file under any name
    else:
        assert names == ["gcc-12_12.2.0-14_armhf.deb", "make_4.3-4.1_armhf.deb"] and stored == 2, names
        assert (cache / "gcc-12_12.2.0-14_armhf.deb").read_bytes() == b"x" * 300_000
    assert trouble is None and not (tmp_path / "evil_1_all.deb").exists()


def test_a_full_package_cache_is_reported_and_leaves_no_half_file(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import shutil

    from podrepro.images import base

    cache = tmp_path / "debs"
    cache.mkdir()
    real = shutil.copyfileobj

    def full_after_the_first(src: Any, dst: Any, length: int = 0) -> None:
        if any(cache.glob("*.deb")):  # the second file: a few bytes, then the disk is full
            dst.write(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
        real(src, dst, length)

    monkeypatch.setattr(shutil, "copyfileobj", full_after_the_first)
    rec = base._DebsReceiver(cache)
    w = os.dup(rec.write_fd)
    rec.started()
    # (the receiver stops reading: the hook's tar stops too)
    with contextlib.suppress(BrokenPipeError), os.fdopen(w, "wb") as out:
        out.write(_tar_of([("a_1_all.deb", b"a" * 1000), ("b_1_all.deb", b"b" * 1000), ("c_1_all.deb", b"c")]))
    stored, trouble = rec.finish()
    assert stored == 1 and sorted(p.name for p in cache.iterdir()) == ["a_1_all.deb"]
    assert trouble == f"no space left on device for the package cache in {cache}"
