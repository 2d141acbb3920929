"""The ``host-dpkg`` installer: the mmdebstrap extract hook that resolves, downloads and installs
a bootstrap's packages with the host's apt and dpkg (HOST_DPKG_HOOK), and the pieces it is made
of: the seed check, the final check and the extraction closure (awk), and the names of what it
shares with podrepro (environment variables, log lines). What runs in place of the target's own
tools meanwhile (the decompressing copier, the helper stand-ins, Python's byte-compilation) is
engine/standins.py. Pure text; engine/bootstrap.py puts it on
mmdebstrap's command line, images/base.py runs it."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from podrepro.engine.standins import MAINTSCRIPT_HELPER, PYC_NATIVE, PYC_SHIM, REPACK_AHEAD, REPACK_PL, SYSTEMD_HELPER

# The seed check (awk; unit-tested): the first file is the seed's dpkg database
# ("ii  package version arch" per line), the second the resolved set ("file package version arch
# essential"). A seed is usable when every package in it is installed and wanted; the wanted
# packages it lacks, or has in another version, go to the file named by -v delta. Prints "ok" or
# the reason it is not usable.
SEED_AWK = r"""
FNR == NR { st[$2] = $1; have[$2] = $3 " " $4; next }
{ want[$2] = 1; if (!($2 in have) || have[$2] != $3 " " $4) print > delta }
END {
  for (p in st) {
    if (st[p] != "ii") { print "its " p " is not fully installed"; exit }
    if (!(p in want)) { print "it has " p ", which this recipe does not install"; exit }
  }
  print "ok"
}
"""

# The final check (awk; unit-tested): the installed packages are exactly the resolved set, each
# fully installed in the resolved version. Same two inputs; prints one line per problem.
CHECK_AWK = r"""
FNR == NR { st[$2] = $1; have[$2] = $3 " " $4; next }
{ want[$2] = 1
  if (!($2 in have)) print "not installed: " $2
  else if (st[$2] != "ii") print "not fully installed (" st[$2] "): " $2
  else if (have[$2] != $3 " " $4) print "installed " $2 " " have[$2] ", resolved " $3 " " $4 }
END { for (p in st) if (!(p in want)) print "installed but not resolved: " p }
"""

# The packages whose files are extracted before dpkg unpacks anything (awk; unit-tested): the
# Essential:yes and Priority: required ones and, transitively, every package of the resolved set
# they depend on (Depends and Pre-Depends, any alternative that is in the set). Input: the hook's
# fields file, "file<TAB>package<TAB>version<TAB>arch<TAB>essential<TAB>priority<TAB>deps" per
# line. Prints their files, in the input's order.
DEPS_AWK = r"""
{ file[$2] = $1; deps[$2] = $7; order[NR] = $2
  if ($5 == "yes" || $6 == "required") { queue[++n] = $2; take[$2] = 1 } }
END {
  for (i = 1; i <= n; i++) {
    m = split(deps[queue[i]], alt, /[,|]/)
    for (j = 1; j <= m; j++) {
      d = alt[j]; sub(/^[ \t]+/, "", d); sub(/[ (:].*$/, "", d)
      if (d != "" && (d in file) && !(d in take)) { take[d] = 1; queue[++n] = d }
    }
  }
  for (i = 1; i <= NR; i++) if (order[i] in take) print file[order[i]]
}
"""

# Where mmdebstrap has set things up for this run, which a seed's old copies must not replace:
# the apt sources, mmdebstrap's apt/dpkg settings and its apt config in /tmp (its cleanup uses and
# removes them), and the downloaded .debs and index files (synced out to the package cache).
RUN_OWNED = (
    "etc/apt/sources.list", "etc/apt/sources.list.d", "etc/apt/apt.conf.d/00mmdebstrap",
    "etc/apt/apt.conf.d/99mmdebstrap", "etc/dpkg/dpkg.cfg.d/99mmdebstrap", "var/cache/apt", "var/lib/apt/lists",
    "tmp",
)

SEED_FD_ENV = "PODREPRO_SEED_FD"
DEBS_FD_ENV = "PODREPRO_DEBS_FD"
BINFMT_REGISTER_ENV = "PODREPRO_BINFMT_REGISTER"
BINFMT_MOUNT_ENV = "PODREPRO_BINFMT_MOUNT"
SEEDED = "I: podrepro: seeded from an earlier base"  # the hook's verdict, in the build log

# mmdebstrap --extract-hook (run in its user namespace, $1 = the root) that resolves, downloads
# and installs the packages with the *host's* apt and dpkg (--root): resolving, unpacking and
# dpkg's own bookkeeping run natively; only the maintainer scripts and triggers run (chrooted, by
# dpkg) under qemu. mmdebstrap's own way runs the target's dpkg and apt in the chroot, so every
# byte of every package is unpacked again under emulation.
#
# mmdebstrap runs with --variant=extract and no --include: it sets up apt in the root (sources,
# keyring, apt-get update) and the mounts, and then calls this hook. The package set is the apt
# patterns in $include (a line podrepro puts before this script): apt resolves them with
# mmdebstrap's apt setup and downloads what the package cache lacks, as mmdebstrap itself does for
# --include (apt only prints its dpkg calls; the list of .debs, in apt's order, comes out on fd
# 7). Only the files of the Essential and Priority: required packages and of what they depend on
# are extracted first (DEPS_AWK; the maintainer scripts that run while dpkg unpacks need a shell
# and the essential tools): mmdebstrap would extract every package, a whole compiler's worth of
# files that dpkg then writes again. The order follows mmdebstrap's: base-passwd first (its
# preinst creates /etc/passwd), then the Essential:yes packages, then the rest in apt's order;
# everything is unpacked first (from copies with their data decompressed on the other core:
# REPACK_PL), then dpkg configures in dependency order; while dpkg runs maintainer scripts,
# MAINTSCRIPT_HELPER and SYSTEMD_HELPER answer the helpers' calls that have one answer.
# --path-include=* undoes path-exclude rules of the host's dpkg config, which --root does not
# isolate. Passed inline: the
# namespace's root may not be able to read a file in the user's home.
#
# Seeding: with $PODREPRO_SEED_FD set, that descriptor (podrepro passes it as mmdebstrap's
# standard input, which its hooks inherit) streams the root filesystem of an earlier base image
# of the same architecture and suite (podrepro exports it). When that image's packages
# are all part of this run's resolved set (SEED_AWK), the root is replaced by it (keeping what
# this run set up: RUN_OWNED, and dev/proc/sys, where mmdebstrap has mounted things) and only the
# packages it lacks are installed (nothing is extracted first: the seed is a configured system):
# a recipe change that adds packages, or the same packages under a new recipe, configures a
# handful of packages instead of a whole system. Anything else (an unreadable stream, a package
# the new set does not have) falls back to installing everything.
# Either way the result must be exactly the resolved set, fully installed (CHECK_AWK).
HOST_DPKG_HOOK = r"""set -eu
root="$1"
cd "$root"
set -f
if [ -n "${PODREPRO_BINFMT_REGISTER:-}" ]; then
  # zero-sudo (Linux >= 6.7): a binfmt_misc instance of this user namespace's own, where qemu is
  # registered for the maintainer scripts below; it goes away with the namespace, and the host's
  # binfmt_misc is never touched
  # (its mount point: a dir podrepro made in its own temp dir, removed afterwards; the mount
  # itself goes with the namespace)
  bm="${PODREPRO_BINFMT_MOUNT:?podrepro passed no mount point}"
  mount -t binfmt_misc binfmt_misc "$bm"
  printf '%s\n' "$PODREPRO_BINFMT_REGISTER" > "$bm/register"
  echo "I: podrepro: qemu registered in this bootstrap's own binfmt_misc (no host handler used)" >&2
fi
# (the maintainer scripts run chrooted, with dpkg's PATH: /.podrepro-bin is the root's, and first)
mkdir "$root/.podrepro-bin"
: > "$root/.podrepro-bin/answered"
cat > "$root/.podrepro-bin/dpkg-maintscript-helper" <<'PODREPRO_HELPER'
@MAINTSCRIPT_HELPER@
PODREPRO_HELPER
cat > "$root/.podrepro-bin/deb-systemd-helper" <<'PODREPRO_HELPER'
@SYSTEMD_HELPER@
PODREPRO_HELPER
chmod 755 "$root/.podrepro-bin/dpkg-maintscript-helper" "$root/.podrepro-bin/deb-systemd-helper"
hostdpkg() {
  PATH="/.podrepro-bin:$PATH" dpkg --root="$root" --log="$root/var/log/dpkg.log" --force-architecture \
    --force-unsafe-io --force-confdef --force-confnew "--path-include=*" "$@" >&2
}
installed() {
  dpkg-query --admindir="$1/var/lib/dpkg" -W -f '${db:Status-Abbrev} ${Package} ${Version} ${Architecture}\n'
}
# the resolved set: "file package version arch essential" per line, in apt's order
want="$root/.podrepro-want"
fields="$root/.podrepro-fields"
todo="$want"
seed="$root/.podrepro-seed"
if [ -n "${PODREPRO_SEED_FD:-}" ]; then
  # the seed unpacks while the package list is read (through fd 8: a background job's
  # standard input would be /dev/null)
  mkdir "$seed"
  exec 8<&"$PODREPRO_SEED_FD"
  tar --directory="$seed" --numeric-owner --xattrs "--xattrs-include=*" -xpf - <&8 2> "$root/.podrepro-seed-err" &
  seeding=$!
  exec 8<&-
fi
# the .debs already there (synced in from podrepro's package cache)
set +f
(cd "$root/var/cache/apt/archives" && for d in *.deb; do [ ! -e "$d" ] || echo "var/cache/apt/archives/$d"; done) \
  > "$root/.podrepro-cached"
set -f
echo "I: downloading packages with apt..." >&2
APT_CONFIG="${MMDEBSTRAP_APT_CONFIG:?mmdebstrap passed no apt config}" apt-get --yes -oDebug::pkgDpkgPm=1 \
  -oDir::Log=/dev/null -oAPT::Keep-Fds::=7 "-oDPkg::Tools::options::'cat >&7'::InfoFD=7" \
  "-oDpkg::Pre-Install-Pkgs::=cat >&7" -oDebug::NoLocking=1 -oDpkg::Use-Pty=0 \
  install ${include:?podrepro passed no packages} 7> "$root/.podrepro-debs" >&2
# what each one is (dpkg-deb extracts each control archive into a temp dir: one in the root,
# which goes with it when the bootstrap is interrupted, never one in /tmp)
mkdir -p "$root/.podrepro-tmp"
while read -r d; do
  case "$d" in "$root"/*) d="${d#"$root"/}" ;; esac
  printf '%s\t' "$d"
  TMPDIR="$root/.podrepro-tmp" dpkg-deb --show \
    --showformat='${Package}\t${Version}\t${Architecture}\t${Essential}\t${Priority}\t${Pre-Depends}, ${Depends}\n' "$d"
done < "$root/.podrepro-debs" > "$fields"
rmdir "$root/.podrepro-tmp"
if [ ! -s "$fields" ]; then echo "E: podrepro: apt resolved no packages" >&2; exit 1; fi
awk -F '\t' '{ print $1, $2, $3, $4, $5 }' "$fields" > "$want"
if [ -n "${PODREPRO_SEED_FD:-}" ]; then
  delta="$root/.podrepro-delta"
  : > "$delta"
  if wait "$seeding" && installed "$seed" > "$root/.podrepro-have"; then
    why=$(awk -v delta="$delta" '@SEED_AWK@' "$root/.podrepro-have" "$want") || why="the seed check failed"
  else
    why="its root filesystem could not be read: $(tail -n 1 "$root/.podrepro-seed-err")"
  fi
  if [ "$why" = ok ]; then
    for p in @RUN_OWNED@; do
      rm -rf "$seed/$p"
      if [ -e "$p" ] || [ -L "$p" ]; then mkdir -p "$(dirname "$seed/$p")"; mv "$p" "$seed/$p"; fi
    done
    find . -mindepth 1 -maxdepth 1 ! -name dev ! -name proc ! -name sys ! -name '.podrepro-*' \
      -exec rm -rf --one-file-system {} +
    find "$seed" -mindepth 1 -maxdepth 1 ! -name dev ! -name proc ! -name sys -exec mv -t . {} +
    echo "@SEEDED@: $(wc -l < "$root/.podrepro-have") packages installed already," \
      "$(wc -l < "$delta") to install" >&2
    todo="$delta"
  else
    echo "I: podrepro: not seeding from the earlier base: $why" >&2
  fi
  rm -rf --one-file-system "$seed"
fi
pre=
if [ "$todo" = "$want" ]; then
  # a whole system: the files of the essential set first (see above)
  pre=$(awk -F '\t' '@DEPS_AWK@' "$fields")
fi
first=; ess=; rest=
while read -r d pkg version arch essential; do
  case "$pkg" in base-passwd) first="$d"; continue ;; esac
  if [ "$essential" = yes ]; then ess="$ess $d"; else rest="$rest $d"; fi
done < "$todo"
# the .debs, decompressed on the other core (REPACK_PL) in the order dpkg unpacks them, while the
# essential set is extracted (from the originals); "ready D" waits for D's copy and sets $r to it
# (to D itself when the copier has left it out, .failed, or has ended: .end, whatever ended it)
plain="$root/.podrepro-plain"
mkdir "$plain" "$root/.podrepro-tmp"
(
  TMPDIR="$root/.podrepro-tmp" perl -e '@REPACK_PL@' "$plain" @REPACK_AHEAD@ $first $ess $rest || true
  : > "$plain/.end"
) &
repacker=$!
trap 'kill "$repacker" 2>/dev/null || true' EXIT
ready() {
  r="$plain/${1##*/}"
  until [ -e "$r" ]; do
    if [ -e "$r.failed" ] || [ -e "$plain/.end" ]; then [ -e "$r" ] || r="$1"; break; fi
    sleep 0.02
  done
}
if [ -n "$pre" ]; then
  echo "I: extracting archives: $(echo $pre | wc -w) essential and required packages and their dependencies" >&2
  for d in $pre; do
    { dpkg-deb --fsys-tarfile "$d" || : > "$root/.podrepro-failed"; } | tar -C "$root" --keep-directory-symlink -x
    if [ -e "$root/.podrepro-failed" ]; then echo "E: podrepro: could not extract $d" >&2; exit 1; fi
  done
fi
if [ -n "$first$ess$rest" ]; then
  echo "I: podrepro: unpacking $(echo $first $ess $rest | wc -w) packages with the host's dpkg" >&2
  # in the same order as one dpkg run would, in runs of what is ready: the next 8 (or what is
  # left), waited for, and whatever else is ready already (each copy goes once it is unpacked)
  set -- $first $ess $rest
  copies=0
  while [ $# -gt 0 ]; do
    batch=; n=0
    for d in "$@"; do
      if [ "$n" -ge 8 ] && [ ! -e "$plain/${d##*/}" ] && [ ! -e "$plain/${d##*/}.failed" ]; then break; fi
      ready "$d"
      batch="$batch $r"; n=$((n + 1))
    done
    shift "$n"
    hostdpkg --unpack --force-depends $batch
    for r in $batch; do case "$r" in "$plain"/*) rm -f "$r"; copies=$((copies + 1)) ;; esac; done
  done
  echo "I: podrepro: dpkg unpacked $copies of $(echo $first $ess $rest | wc -w) packages from copies decompressed beforehand" >&2
fi
wait "$repacker" || true
trap - EXIT
rm -rf "$plain" "$root/.podrepro-tmp"
# Python's byte-compilation natively (PYC_SHIM), for each Python of the target whose exact
# version the host's CPython has: the stand-in goes in place of its py_compile.py while dpkg
# configures, and the real one is back before anything else happens
pyc=
set +f
pys=$(echo "$root"/usr/lib/python3.*/py_compile.py)
set -f
for real in $pys; do
  [ -f "$real" ] && [ ! -L "$real" ] || continue
  v="${real%/py_compile.py}"; v="${v##*/python}"
  tv=$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f '${Version}' "libpython$v-minimal" 2>/dev/null) || continue
  tv="${tv#*:}"; tv="${tv%%-*}"
  for hp in "/usr/bin/python$v" "$(command -v "python$v" || true)"; do
    [ -x "$hp" ] || continue
    if [ "$("$hp" -I -S -c 'import platform, sys; print(sys.implementation.name, platform.python_version())' 2>/dev/null)" = "cpython $tv" ]; then
      # (python caches the stand-in's own bytecode where py_compile's goes: what is there now is
      # kept aside and put back afterwards)
      mkdir "$real.podrepro-cache"
      set +f
      for f in "${real%/*}"/__pycache__/py_compile.*; do [ ! -e "$f" ] || mv "$f" "$real.podrepro-cache/"; done
      set -f
      mv "$real" "$real.podrepro-real"
      cat > "$real" <<'PODREPRO_PYC_SHIM'
@PYC_SHIM@
PODREPRO_PYC_SHIM
      pyc="$pyc $v=$hp"
      echo "I: podrepro: Python $tv's byte-compilation runs natively (the host's $hp is the same version)" >&2
      break
    fi
  done
done
: > "$root/.podrepro-pyc"
debsout=
if [ -n "${PODREPRO_DEBS_FD:-}" ]; then
  # the .debs this run downloaded go to podrepro's package cache while dpkg configures (a tar on
  # the descriptor podrepro gave mmdebstrap, which it reads as it comes): the disk and the
  # second core are idle meanwhile, and mmdebstrap's sync-out took seconds afterwards
  cut -f1 "$fields" | grep -vxF -f "$root/.podrepro-cached" | sed 's|^var/cache/apt/archives/||' \
    > "$root/.podrepro-new" || true
  # (written by perl, which mmdebstrap itself needs: the descriptor may be above 9, which sh
  # cannot redirect, and the namespace's root may not reopen the pipe by its /proc name)
  tar -C "$root/var/cache/apt/archives" -cf - --no-recursion -T "$root/.podrepro-new" |
    perl -e 'open(my $o, ">&=", $ARGV[0]) or die "fd $ARGV[0]: $!\n"; binmode STDIN; binmode $o;
      while (read(STDIN, my $buf, 1 << 16)) { print $o $buf or die "$!\n" } close $o or die "$!\n"' "$PODREPRO_DEBS_FD" &
  debsout=$!
fi
echo "I: podrepro: configuring them (maintainer scripts run emulated)" >&2
# in dependency order; the host's dpkg takes its own architecture for the native one, so an
# Architecture: all package's dependency on an armhf (say) package looks unmet to it: dpkg
# configures those few last, when nothing else is left ("configuring anyway"), in the same pass
# (a second pass after a failing first one, as before, ran every trigger twice)
export PODREPRO_PYC_LIST=/.podrepro-pyc
hostdpkg --configure --pending --force-depends
for e in $pyc; do
  v="${e%%=*}"
  real="$root/usr/lib/python$v/py_compile.py"
  mv "$real.podrepro-real" "$real"
  set +f
  rm -f "${real%/*}"/__pycache__/py_compile.*
  for f in "$real.podrepro-cache"/*; do [ ! -e "$f" ] || mv "$f" "${real%/*}/__pycache__/"; done
  set -f
  rmdir "$real.podrepro-cache"
  (umask 022; "${e#*=}" -I -S -c '@PYC_NATIVE@' "$root" "$root/.podrepro-pyc" "$v") >&2
done
if [ -n "$debsout" ] && ! wait "$debsout"; then
  echo "W: podrepro: the downloaded packages could not be sent to the package cache" >&2
fi
installed "$root" > "$root/.podrepro-got"
bad=$(awk '@CHECK_AWK@' "$root/.podrepro-got" "$want" | head -n 5)
answered="$root/.podrepro-bin/answered"
echo "I: podrepro: $(grep -cv ' deb-systemd-helper ' "$answered" 2>/dev/null || true) dpkg-maintscript-helper calls" \
  "and $(grep -c ' deb-systemd-helper ' "$answered" 2>/dev/null || true) of deb-systemd-helper had one answer in a" \
  "fresh install (answered without the real helper)" >&2
rm -rf "$root/.podrepro-bin"
rm -f "$want" "$fields" "$root/.podrepro-debs" "$root/.podrepro-pyc" "$root/.podrepro-cached" "$root/.podrepro-new" \
  "$root/.podrepro-got" "$root/.podrepro-have" "$root/.podrepro-delta" "$root/.podrepro-seed-err"
if [ -n "$bad" ]; then echo "E: podrepro: the installed packages are not the resolved set: $bad" >&2; exit 1; fi
""".replace("@SEED_AWK@", SEED_AWK).replace("@DEPS_AWK@", DEPS_AWK).replace("@PYC_SHIM@", PYC_SHIM.strip("\n")).replace("@PYC_NATIVE@", PYC_NATIVE).replace("@REPACK_PL@", REPACK_PL).replace("@REPACK_AHEAD@", str(REPACK_AHEAD)).replace("@MAINTSCRIPT_HELPER@", MAINTSCRIPT_HELPER.strip("\n")).replace(
    "@SYSTEMD_HELPER@", SYSTEMD_HELPER.strip("\n")).replace("@CHECK_AWK@", CHECK_AWK).replace("@RUN_OWNED@", " ".join(RUN_OWNED)).replace("@SEEDED@", SEEDED)


def host_dpkg_hook(packages: Sequence[str]) -> str:
    """HOST_DPKG_HOOK with its package list (apt patterns, one word each) set first."""
    return f"include={shlex.quote(' '.join(packages))}\n{HOST_DPKG_HOOK}"
