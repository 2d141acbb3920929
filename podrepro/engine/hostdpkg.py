"""The ``host-dpkg`` installer: the mmdebstrap extract hook that resolves, downloads and installs
a bootstrap's packages with the host's apt and dpkg (HOST_DPKG_HOOK), and the pieces it is made
of: the seed check, the final check and the extraction closure (awk), the decompressing copier
(perl), the dpkg-maintscript-helper and deb-systemd-helper stand-ins (sh), Python's native
byte-compilation (a py_compile stand-in and the host's compile), and the names of what it shares
with podrepro (environment variables, log lines). Pure text; engine/bootstrap.py puts it on
mmdebstrap's command line, images/base.py runs it."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

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

# Python's byte-compilation, natively. python3.X's postinsts compile the whole standard library
# with the target's python (py_compile.py), py3compile each python3-* package's files the same
# way: under qemu, 8.4 s of the generic profile's 30 s of emulated configuring (bench/README.md).
# .pyc files do not depend on the machine, only on the CPython version (byte-identical, checked
# against the target's own compile by the e2e suite), so when the host has the target's exact
# CPython version the hook puts PYC_SHIM in place of the target's py_compile.py while dpkg
# configures: whatever a maintainer script byte-compiles through it (py_compile's command line,
# its compile(), compileall) is only written down, in $PODREPRO_PYC_LIST. Then the real
# py_compile.py is put back and PYC_NATIVE, run by the host's CPython, compiles the same files
# with the same arguments (optimization, invalidation mode, cfile, dfile), following symbolic
# links inside the root as the target would. Another version on the host (or none): everything
# runs emulated as before.
PYC_SHIM = r'''
"""podrepro's stand-in for py_compile while a bootstrap configures its packages: it writes down
what it is asked to compile; the host's CPython, the same version, compiles it afterwards."""
import enum
import importlib.util
import os
import sys

__all__ = ["compile", "main", "PyCompileError", "PycInvalidationMode"]


class PyCompileError(Exception):
    def __init__(self, exc_type, exc_value, file, msg=""):
        self.msg = msg or f"{exc_type.__name__}: {exc_value}"
        Exception.__init__(self, self.msg)


class PycInvalidationMode(enum.Enum):
    TIMESTAMP = 1
    CHECKED_HASH = 2
    UNCHECKED_HASH = 3


def compile(file, cfile=None, dfile=None, doraise=False, optimize=-1, invalidation_mode=None, quiet=0):
    if invalidation_mode is None:
        invalidation_mode = (PycInvalidationMode.CHECKED_HASH if os.environ.get("SOURCE_DATE_EPOCH")
                             else PycInvalidationMode.TIMESTAMP)
    level = optimize if optimize >= 0 else sys.flags.optimize
    fields = ["%d.%d" % sys.version_info[:2], str(level), invalidation_mode.name, os.path.abspath(file),
              os.path.abspath(cfile) if cfile else "", dfile or ""]
    if any("\t" in f or "\n" in f for f in fields):
        raise PyCompileError(ValueError, "a tab or newline in the name", file)
    listed = os.environ.get("PODREPRO_PYC_LIST")
    if not listed:
        raise SystemExit("podrepro's py_compile stand-in: PODREPRO_PYC_LIST is not set")
    with open(listed, "a") as out:
        out.write("\t".join(fields) + "\n")
    return cfile or importlib.util.cache_from_source(file, optimization=level if level else "")


def main():
    names = [a for a in sys.argv[1:] if a not in ("-q", "--quiet")]
    if names == ["-"]:
        names = [line.rstrip("\n") for line in sys.stdin.readlines()]
    for name in names:
        compile(name.rstrip("\n"), doraise=True)


if __name__ == "__main__":
    main()
'''

# Run by the host's CPython as -c (no single quotes in it): argv = root, the list, the version.
PYC_NATIVE = r"""
import importlib.util, os, py_compile, sys
root, listed, version = sys.argv[1:4]

def inside(path):
    parts, out, hops = [p for p in path.split("/") if p], [], 0
    while parts:
        p = parts.pop(0)
        if p in ("", "."):
            continue
        if p == "..":
            out = out[:-1]
            continue
        here = os.path.join(root, *out, p)
        if os.path.islink(here):
            hops += 1
            if hops > 40:
                raise SystemExit("E: podrepro: too many symbolic links in " + path)
            target = os.readlink(here)
            out = [] if target.startswith("/") else out
            parts = [q for q in target.split("/") if q] + parts
            continue
        out.append(p)
    return os.path.join(root, *out)

done = set()
for line in open(listed):
    v, level, mode, path, cfile, dfile = line.rstrip("\n").split("\t")
    if v != version or (level, mode, path, cfile, dfile) in done:
        continue
    done.add((level, mode, path, cfile, dfile))
    level = int(level)
    cfile = cfile or importlib.util.cache_from_source(path, optimization=level if level else "")
    py_compile.compile(inside(path), cfile=os.path.join(inside(os.path.dirname(cfile)), os.path.basename(cfile)),
                       dfile=dfile or path, doraise=True, optimize=level,
                       invalidation_mode=py_compile.PycInvalidationMode[mode])
print("I: podrepro: byte-compiled %d files of Python %s natively" % (len(done), version), file=sys.stderr)
"""

# dpkg-maintscript-helper's calls that change nothing, answered in sh: first on the PATH the host's
# dpkg gives the maintainer scripts while the hook installs packages (the real one stays where it
# is). Debian's maintainer scripts call it for every conffile a package once had (debhelper
# generates one call per conffile in both preinst and postinst: 100 in the generic profile's
# packages, 44 of them debian-archive-keyring's), and each call is three processes under qemu
# (sh, basename, dpkg --validate-version): about 0.1 s each, a tenth of all the emulated
# configuring. In a preinst "install"/"upgrade" or a postinst "configure" with no old version (a
# package installed afresh), rm_conffile, mv_conffile, symlink_to_dir and dir_to_symlink only
# check their arguments and do nothing (the last two act in a postinst only when an upgrade's
# preinst has left a .dpkg-backup); this answers exactly those calls (absolute names, a target, a
# well-formed last version, no .dpkg-backup, the maintainer script's environment set, no
# DPKG_DEBUG) and hands everything else, unchanged, to the real helper, which checks and reports
# as it always does. What it does not check: whether dpkg itself accepts the last version (the
# real helper asks dpkg, a third process); the distribution's own scripts pass its tests.
MAINTSCRIPT_HELPER = r"""#!/bin/sh
# podrepro's stand-in for dpkg-maintscript-helper while a bootstrap installs packages: the calls
# that change nothing for a package installed afresh end here, everything else goes to the real
# helper.
nothing_to_do() {
  backup=
  case "$1" in
  rm_conffile) first="${2-}"; second=/; last="${3-}" ;;
  mv_conffile) first="${2-}"; second="${3-}"; last="${4-}" ;;
  symlink_to_dir) first="${2-}"; second=/; last="${4-}"; backup="${2-}.dpkg-backup"
    case "$first" in */) return 1 ;; esac
    case "${3-}" in "" | --) return 1 ;; esac ;;
  dir_to_symlink) first="${2%/}"; second=/; last="${4-}"; backup="${2%/}.dpkg-backup"
    case "${3-}" in "" | --) return 1 ;; esac ;;
  *) return 1 ;;
  esac
  case "$first" in /*) ;; *) return 1 ;; esac
  case "$second" in /*) ;; *) return 1 ;; esac
  [ "$last" != "--" ] || last=
  case "$last" in "") ;; *[!A-Za-z0-9.+~:-]*) return 1 ;; [0-9]*) ;; *) return 1 ;; esac
  # (symlink_to_dir and dir_to_symlink finish in the postinst what an upgrade's preinst began)
  if [ -n "$backup" ] && { [ -e "${DPKG_ROOT-}$backup" ] || [ -L "${DPKG_ROOT-}$backup" ]; }; then return 1; fi
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do shift; done
  [ $# -gt 1 ] && [ -z "${3-}" ] || return 1
  case "$DPKG_MAINTSCRIPT_NAME $2" in "preinst install" | "preinst upgrade" | "postinst configure") return 0 ;; esac
  return 1
}
if [ -z "${DPKG_DEBUG-}" ] && [ -n "${DPKG_MAINTSCRIPT_NAME-}" ] && [ -n "${DPKG_MAINTSCRIPT_PACKAGE-}" ] &&
  nothing_to_do "$@"; then
  { echo "$DPKG_MAINTSCRIPT_PACKAGE $DPKG_MAINTSCRIPT_NAME $1" >> "${0%/*}/answered"; } 2>/dev/null || :
  exit 0
fi
exec /usr/bin/dpkg-maintscript-helper "$@"
"""

# deb-systemd-helper's questions that have one answer in a fresh install, answered in sh (beside
# MAINTSCRIPT_HELPER, for the same reason): debhelper's snippet for each systemd unit a package
# ships runs "unmask UNIT", then "was-enabled UNIT" and, as that says yes for a unit never seen,
# "enable UNIT"; each call is perl under qemu (0.35 s: apt, e2fsprogs and util-linux ship six
# units). unmask only removes a mask deb-systemd-helper itself made (a /dev/null link in
# /etc/systemd/<instance>/ with a state file) and then empty masked-state dirs: with neither the
# link nor those dirs, it does nothing. was-enabled is "yes" when the unit has no state file (and
# says "enabled" on stderr unless --quiet). Exactly those calls end here (the options --quiet,
# --user, --system only, DPKG_MAINTSCRIPT_PACKAGE set, no _DEB_SYSTEMD_HELPER_DEBUG); enable and
# everything else run the real helper.
SYSTEMD_HELPER = r"""#!/bin/sh
# podrepro's stand-in for deb-systemd-helper while a bootstrap installs packages: the questions
# with one answer in a fresh install end here, everything else goes to the real helper.
answer() {
  quiet=; instance=system
  while :; do
    case "${1-}" in
    --quiet) quiet=1 ;;
    --user) instance=user ;;
    --system) instance=system ;;
    *) break ;;
    esac
    shift
  done
  action="${1-}"
  [ $# -gt 1 ] || return 1
  shift
  state=/var/lib/systemd/deb-systemd-helper-enabled
  [ "$instance" = system ] || state=/var/lib/systemd/deb-systemd-user-helper-enabled
  case "$action" in
  unmask)
    for d in /var/lib/systemd/deb-systemd-helper-masked /var/lib/systemd/deb-systemd-user-helper-masked; do
      if [ -e "${DPKG_ROOT-}$d" ] || [ -L "${DPKG_ROOT-}$d" ]; then return 1; fi
    done ;;
  was-enabled) ;;
  *) return 1 ;;
  esac
  units=0
  for u; do
    case "$u" in "" | -*) return 1 ;; esac
    case "$action" in
    unmask) there="${DPKG_ROOT-}/etc/systemd/$instance/${u##*/}" ;;
    *) there="${DPKG_ROOT-}$state/${u##*/}.dsh-also" ;;
    esac
    if [ -e "$there" ] || [ -L "$there" ]; then return 1; fi
    units=$((units + 1))
  done
}
if [ -n "${DPKG_MAINTSCRIPT_PACKAGE-}" ] && [ -z "${_DEB_SYSTEMD_HELPER_DEBUG-}" ] && answer "$@"; then
  if [ "$action" = was-enabled ] && [ -z "$quiet" ]; then
    while [ "$units" -gt 0 ]; do echo enabled >&2; units=$((units - 1)); done
  fi
  { echo "$DPKG_MAINTSCRIPT_PACKAGE $DPKG_MAINTSCRIPT_NAME deb-systemd-helper $action" >> "${0%/*}/answered"; } 2>/dev/null || :
  exit 0
fi
exec /usr/bin/deb-systemd-helper "$@"
"""

# The .debs with their data member decompressed (perl, which mmdebstrap itself needs; run in the
# background by HOST_DPKG_HOOK, inline: no single quotes in it): argv = the output dir, how many bytes of copies it may keep ahead
# of dpkg, then the .debs in the order dpkg unpacks them. Debian's data.tar.xz decompresses single-threaded, and the host's dpkg spent most of its
# unpacking time on it (bench/README.md): this runs on the other core while dpkg unpacks what is
# ready, so dpkg reads plain tar. Each one is written as NAME.part and renamed to NAME (the name
# of the original) when whole; the other members and every header field but the data member's
# name and size are copied as they are, so dpkg unpacks the same files with the same metadata.
# One it cannot convert (not an ar archive, dpkg-deb failing) is left out with a warning and
# NAME.failed: the hook then unpacks the original. It stays at most REPACK_AHEAD bytes (and 8 copies, whatever
# their size: dpkg's runs wait for 8) ahead of dpkg, which unpacks in the same order, so the copies
# never take more than that beside the root (/tmp is a tmpfs on Fedora), and dpkg never waits for
# a copy the copier is not making.
REPACK_PL = r"""
use strict; use warnings;
my ($out, $limit) = splice(@ARGV, 0, 2);
my $parent = getppid();  # the hook: when it is gone (killed, failed), so is the copier
# what is written and not unpacked yet (the hook removes each copy once dpkg has unpacked it)
sub ahead {
  opendir(my $d, $out) or return (0, 0);
  my ($n, $bytes) = (0, 0);
  for my $f (readdir $d) { next if $f !~ /\.deb$/; $n++; $bytes += (-s "$out/$f") // 0 }
  return ($n, $bytes);
}
sub repack {
  my ($deb, $part) = @_;
  open(my $in, "<:raw", $deb) or die "$!\n";
  my $magic = "";
  (read($in, $magic, 8) // 0) == 8 && $magic eq "!<arch>\n" or die "not an ar archive\n";
  open(my $o, ">:raw", $part) or die "$part: $!\n";
  print $o $magic or die "$!\n";
  my $converted = 0;
  while ((read($in, my $h, 60) // 0) == 60) {
    my ($name, $size) = (substr($h, 0, 16), substr($h, 48, 10));
    $name =~ s/[ \/]+$//; $size =~ s/ +$//;
    $size =~ /^[0-9]+$/ && substr($h, 58, 2) eq "`\n" or die "a broken ar member header\n";
    if ($name =~ /^data\.tar\.[a-z0-9]+$/) {
      my $at = tell($o);
      print $o sprintf("%-16s", "data.tar"), substr($h, 16, 32), " " x 10, "`\n" or die "$!\n";
      open(my $t, "-|", "dpkg-deb", "--fsys-tarfile", $deb) or die "dpkg-deb: $!\n";
      binmode $t;
      my $n = 0;
      while (my $got = read($t, my $buf, 1 << 20)) { print $o $buf or die "$!\n"; $n += $got }
      close $t or die "dpkg-deb --fsys-tarfile failed\n";
      $n <= 9999999999 or die "too big\n";
      print $o "\n" or die "$!\n" if $n % 2;
      my $end = tell($o);
      seek($o, $at + 48, 0) && print $o sprintf("%-10d", $n) or die "$!\n";
      seek($o, $end, 0) or die "$!\n";
      seek($in, $size + $size % 2, 1) or die "$!\n";
      $converted = 1;
    } else {
      print $o $h or die "$!\n";
      my $left = $size + $size % 2;
      while ($left > 0) {
        my $got = read($in, my $buf, $left < (1 << 20) ? $left : 1 << 20) or die "cut short\n";
        print $o $buf or die "$!\n"; $left -= $got;
      }
    }
  }
  close $o or die "$!\n";
  $converted or die "no compressed data member\n";
}
for my $deb (@ARGV) {
  while (1) {
    exit 1 if getppid() != $parent;
    my ($n, $bytes) = ahead();
    last if $n < 8 || $bytes < $limit;
    select(undef, undef, undef, 0.05);
  }
  (my $name = $deb) =~ s{.*/}{};
  my $part = "$out/$name.part";
  if (eval { repack($deb, $part); 1 }) {
    rename($part, "$out/$name") or warn "W: podrepro: $name: $!\n";
  } else {
    unlink $part;
    if (open(my $m, ">", "$out/$name.failed")) { close $m }  # the hook unpacks the original
    (my $why = $@) =~ s/\n$//;
    warn "W: podrepro: $deb is unpacked from its compressed data ($why)\n";
  }
}
"""

REPACK_AHEAD = 256 << 20

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
