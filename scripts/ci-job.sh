#!/usr/bin/env bash
# A podrepro reproduction as a CI job step (GitHub Actions, GitLab CI; see the README's "Running
# in CI"). Run it in the project's checkout:
#
#   scripts/ci-job.sh [--no-setup] [--image-cache DIR] ARCH [-- TEST ARGS...]
#
# 1. host setup (scripts/setup-host.sh: packages through sudo, binfmt handlers) unless --no-setup;
# 2. a binfmt handler for ARCH: the distro's if it works, else podrepro's one-time registration
#    (sudo, --yes: a CI job has no terminal to ask);
# 3. with --image-cache DIR (a directory the CI service caches between jobs): the image from
#    DIR/ARCH.tar when the store lacks it, so a job does not bootstrap it again;
# 4. podrepro test ARCH (the job's exit code is the tests': 8 when ctest reports failures);
# 5. with --image-cache, the image written to DIR/ARCH.tar for the next job when DIR had none, or
#    had one for another recipe (the image had to be built).
# PODREPRO (default: podrepro on PATH) names the program, e.g. a venv's.
set -euo pipefail

SETUP=1
CACHE=""
while [ $# -gt 0 ]; do
    case "$1" in
        --no-setup) SETUP=0; shift ;;
        --image-cache) CACHE="$2"; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        -*) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) break ;;
    esac
done
[ $# -ge 1 ] || { echo "error: which architecture? scripts/ci-job.sh ARCH (see --help)" >&2; exit 2; }
ARCH="$1"; shift
[ "${1:-}" = "--" ] && shift
P="${PODREPRO:-podrepro}"
say() { printf 'ci-job: %s\n' "$*"; }

if [ "$SETUP" -eq 1 ]; then
    "$(dirname "$0")/setup-host.sh"
fi
if ! "$P" doctor "$ARCH" >/dev/null 2>&1; then
    say "no usable binfmt handler for $ARCH: registering podrepro's own (sudo)"
    "$P" binfmt register "$ARCH" --yes
fi
archive=""
if [ -n "$CACHE" ]; then
    mkdir -p "$CACHE"
    archive="$CACHE/$ARCH.tar"
    if [ -f "$archive" ]; then
        say "importing the cached $ARCH image from $archive"
        "$P" image import "$archive" || { say "the cached archive was refused; building instead"; rm -f "$archive"; }
    fi
fi
# the image now (from the store, the archive, or built): built means the archive (if any) was
# for another recipe (an edited podrepro.toml, a podrepro upgrade) and gets replaced below
built=$("$P" image build "$ARCH" --json | grep -c '"built": true' || true)
rc=0
"$P" test "$ARCH" "$@" || rc=$?
if [ -n "$archive" ] && { [ ! -f "$archive" ] || [ "$built" -gt 0 ]; }; then
    say "caching the $ARCH image in $archive for the next job"
    "$P" image export "$ARCH" -o "$archive" || say "could not export the image (the tests' result stands)"
fi
exit "$rc"
