"""``test``'s run: the build (when given), then the tests, counted from the harness's results."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from podrepro.arches import Arch
from podrepro.profiles import Profile
from podrepro.reporting import Notify
from podrepro.results import Counted


def run_tests(build: list[str] | None, test: list[str], profile: Profile, vals: dict[str, str], root: Path,
              arch: Arch, filt: str | None, say: Notify, after: Callable[[], None] | None = None) -> int:
    """The build (when given), then the tests; the tests' exit code, or an error when none ran.
    ``after``: what brings the results here once the build or the tests ended (a remote run)."""
    from podrepro import results, runner
    from podrepro.engine import process
    from podrepro.errors import EXIT_CANNOT_INVOKE, EXIT_ENGINE, EXIT_NOT_FOUND, PodreproError

    if build is not None:
        say(f"building first with the {profile.name} profile's build command (--no-build to skip)")
        rc = process.foreground(build)
        if rc != 0:
            if after is not None:
                after()
            say(f"the build failed (exit {rc}): no tests were run")
            return rc
    spec = None
    if profile.results:
        kind, rel = results.parse_spec(profile.results)
        path = root / runner.substitute([rel], vals)[0]
        spec = (kind, path)
        results.clear(path)
    try:
        rc = process.foreground(test)
    finally:
        if after is not None:
            after()
    if rc in (EXIT_ENGINE, EXIT_CANNOT_INVOKE, EXIT_NOT_FOUND) or rc >= 128:
        return rc  # podman or the harness itself could not run; its own message says why
    if spec is None:
        if profile.name != "base":
            say(f"podrepro cannot tell how many tests ran: the {profile.name} profile names no results file "
                f"(set results = \"junit:PATH\" in [profile.{profile.name}])")
        return rc
    counted = results.count(*spec)
    if counted.ran == 0:
        if filt is not None:
            raise PodreproError(f"no test ran on {arch.alias}: --filter {filt!r} matched no test",
                                hint="check the pattern; without --filter every test runs")
        why = "the harness wrote no results" if not counted.found else "the build tree has no tests"
        raise PodreproError(f"no test ran on {arch.alias}: {why} ({spec[1].relative_to(root)})",
                            hint=f"check that 'podrepro build {arch.alias}' builds the tests")
    if rc != 0 or counted.failed:
        from podrepro.fidelity.artefacts import hint_for_log

        if (hint := hint_for_log(arch, spec[1])) is not None:
            say(hint)
    say(tally(counted, rc, arch.alias))
    return rc


def tally(counted: Counted, rc: int, alias: str) -> str:
    """The line that says what ran (matrix runs and bundles read it back: ``matrix.runner.SUMMARY``)."""
    ran = "tests ran" if counted.ran is None else f"{counted.ran} test{'s' if counted.ran != 1 else ''} ran"
    if counted.failed:
        return f"{ran} on {alias}, {len(counted.failed)} failed: {', '.join(counted.failed)}"
    return f"{ran} on {alias}" + (", all passed" if rc == 0 else f" (exit {rc})")

