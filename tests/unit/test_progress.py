"""Progress read from a build's own output (podrepro.images.progress) and how the CLI shows it."""

from __future__ import annotations

import io

from podrepro.cli.output import Progress
from podrepro.images.progress import BootstrapProgress, LayerProgress

# lines of a real bootstrap's stderr (the generic profile's packages on armhf, 2026-12-02), in order
BOOTSTRAP = """\
I: skipping emulation check for extract variant
I: finding correct signed-by value...
I: running apt-get update...
I: downloading packages with apt...
I: extracting archives...
I: running --extract-hook in shell: sh -c 'set -eu
I: podrepro: unpacking 3 packages with the host's dpkg
Selecting previously unselected package base-passwd:armhf.
(Reading database ... 0 files and directories currently installed.)
Preparing to unpack .../base-passwd_3.6.1_armhf.deb ...
Unpacking base-passwd:armhf (3.6.1) ...
Unpacking libc6-dbg:armhf (2.36-9+deb12u14) ...
Unpacking ninja-build:armhf (1.11.1-2~deb12u1) ...
I: podrepro: configuring them (maintainer scripts run emulated)
Setting up media-types (10.0.0) ...
dpkg: perl:armhf: dependency problems, but configuring anyway as you requested:
Setting up ca-certificates (20250419~deb12u2) ...
Updating certificates in /etc/ssl/certs...
Processing triggers for libc-bin:armhf (2.36-9+deb12u14) ...
Setting up perl-modules-5.36 (5.36.0-7+deb12u4) ...
I: running special hook: sync-out /var/cache/apt/archives /x
I: cleaning package lists and apt cache...
I: creating tarball...
I: done
"""


def test_bootstrap_progress_follows_a_real_log() -> None:
    p = BootstrapProgress()
    shown = [s for s in (p.feed(line + "\n") for line in BOOTSTRAP.splitlines()) if s is not None]
    assert shown == [
        "reading the package lists",
        "downloading the packages",
        "extracting the packages",
        "unpacking 3 packages with the host's dpkg",
        "unpacking 1/3: base-passwd",
        "unpacking 2/3: libc6-dbg",
        "unpacking 3/3: ninja-build",
        "configuring 3 packages (maintainer scripts emulated)",
        "configuring 1/3: media-types (emulated)",
        "configuring 2/3: ca-certificates (emulated)",
        "configured 2/3; triggers of libc-bin (emulated)",
        "configuring 3/3: perl-modules-5.36 (emulated)",
        "cleaning up",
        "writing the root filesystem into the image",
    ]


def test_bootstrap_progress_of_a_seeded_run() -> None:
    p = BootstrapProgress()
    line = "I: podrepro: seeded from an earlier base: 96 packages installed already, 2 to install"
    assert p.feed(line) == "seeded from an earlier base: 96 packages there already, 2 to install"
    # dpkg's lines before the hook says what it does (a seed's own output) are not counted
    assert p.feed("Setting up zlib1g-dev:armhf (1:1.2.13) ...") is None
    assert p.feed("I: podrepro: unpacking 2 packages with the host's dpkg") is not None
    assert p.unpacked == 0 and p.configured == 0


def test_layer_progress_steps_and_apt_lines() -> None:
    p = LayerProgress()
    assert p.feed("Setting up x (1) ...") == "setting up x"
    assert p.feed("STEP 2/3: RUN apt-get install -y " + "p " * 40) == "step 2/3: RUN apt-get install -y " + (
        "p " * 40)[:57 - len("RUN apt-get install -y ")] + "..."
    assert p.feed("Get:1 http://mirror/debian bookworm/main armhf g++ 12.2.0") is None
    assert p.feed("Unpacking g++-12:amd64 (12.2.0-14) ...") == "step 2/3: unpacking g++-12"
    assert p.feed("Setting up g++-12 (12.2.0-14) ...") == "step 2/3: setting up g++-12"


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_status_lines_are_throttled_but_each_new_kind_shows() -> None:
    out = io.StringIO()
    p = Progress("plain", out)
    p.step("bootstrap", "mmdebstrap armhf bookworm")
    p.status("unpacking 3 packages with the host's dpkg")
    p.status("unpacking 1/3: a")          # same kind, within PLAIN_EVERY: not printed
    p.status("configuring 3 packages (maintainer scripts emulated)")
    p.status("configuring 1/3: a (emulated)")
    p.PLAIN_EVERY = 0.0                    # as if the interval had passed
    p.status("configuring 2/3: b (emulated)")
    lines = [line.split("] ", 1)[1] for line in out.getvalue().splitlines()]
    assert lines == [
        "bootstrap: mmdebstrap armhf bookworm",
        "bootstrap: unpacking 3 packages with the host's dpkg",
        "bootstrap: configuring 3 packages (maintainer scripts emulated)",
        "bootstrap: configuring 2/3: b (emulated)",
    ]


def test_live_status_replaces_the_detail_on_one_line() -> None:
    out = _TTY()
    p = Progress("auto", out)
    p.step("bootstrap", "x" * 500)
    p.status("configuring 1/3: a (emulated)")
    p.done("built it")
    text = out.getvalue()
    assert "\n" not in text.rstrip("\n")           # one live line, ended once by done()
    frames = text.split("\r\x1b[K")
    assert all(len(f.rstrip("\n")) < 400 for f in frames)  # cut to the terminal's width
    assert frames[2].endswith("bootstrap: configuring 1/3: a (emulated)")
    quiet = io.StringIO()
    Progress("none", quiet).status("x")
    assert quiet.getvalue() == ""
