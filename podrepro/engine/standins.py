"""What runs in place of the target's own tools while the host-dpkg hook (engine/hostdpkg.py)
installs packages, because under qemu they cost seconds that change nothing in the result: the
copier that decompresses the .debs on the other core (perl), the stand-ins for
dpkg-maintscript-helper and deb-systemd-helper (sh) that answer the calls with one answer in a
fresh install, and Python's byte-compilation (a py_compile stand-in and the host's compile).
Pure text; the hook writes or runs each, and hands everything else to the real tools."""

from __future__ import annotations

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
