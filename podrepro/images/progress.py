"""What a long image build is doing now, read from its own output: the lines of mmdebstrap, of
podrepro's host-dpkg hook (dpkg's "Unpacking"/"Setting up" lines) and of ``podman build``
("STEP 3/5: ..."), turned into short status texts for ``Reporter.status``. Pure; unit-tested
against a real bootstrap's log."""

from __future__ import annotations

import re

_MM_PHASES = (
    ("I: running apt-get update", "reading the package lists"),
    ("I: downloading packages with apt", "downloading the packages"),
    ("I: extracting archives", "extracting the packages"),
    ("I: cleaning package lists", "cleaning up"),
    ("I: creating tarball", "writing the root filesystem into the image"),
)
_UNPACKING_N = re.compile(r"^I: podrepro: unpacking (\d+) packages")
_SEEDED = re.compile(r"^I: podrepro: seeded from an earlier base: (\d+) packages installed already, (\d+) to install")
_CONFIGURING = "I: podrepro: configuring them"
_UNPACK = re.compile(r"^Unpacking (\S+?)(?::\S+)? \(")
_SETUP = re.compile(r"^Setting up (\S+?)(?::\S+)? \(")
_TRIGGERS = re.compile(r"^Processing triggers for (\S+?)(?::\S+)? \(")
_STEP = re.compile(r"^STEP (\d+/\d+): (.*)$")


class BootstrapProgress:
    """Feed it a bootstrap's output line by line; ``feed`` returns the new status text when the
    line changes what is shown, else None."""

    def __init__(self) -> None:
        self.total = 0      # packages the hook installs (after seeding: the ones it lacks)
        self.unpacked = 0
        self.configured = 0
        self.phase = ""

    def feed(self, line: str) -> str | None:
        line = line.rstrip("\n")
        for prefix, text in _MM_PHASES:
            if line.startswith(prefix):
                self.phase = text
                return text
        m = _SEEDED.match(line)
        if m:
            return f"seeded from an earlier base: {m[1]} packages there already, {m[2]} to install"
        m = _UNPACKING_N.match(line)
        if m:
            self.total = int(m[1])
            self.phase = "unpack"
            return f"unpacking {self.total} packages with the host's dpkg"
        if line.startswith(_CONFIGURING):
            self.phase = "configure"
            return f"configuring {self.total} packages (maintainer scripts emulated)"
        m = _UNPACK.match(line)
        if m and self.phase == "unpack":
            self.unpacked += 1
            return f"unpacking {self.unpacked}/{self.total}: {m[1]}"
        m = _SETUP.match(line)
        if m and self.phase == "configure":
            self.configured += 1
            return f"configuring {self.configured}/{self.total}: {m[1]} (emulated)"
        m = _TRIGGERS.match(line)
        if m and self.phase == "configure":
            return f"configured {self.configured}/{self.total}; triggers of {m[1]} (emulated)"
        return None


class LayerProgress:
    """The same for a ``podman build`` of a layer: its "STEP n/m: INSTRUCTION" lines, and within
    a step apt's own "Unpacking"/"Setting up" lines (a project Containerfile's or a cross
    image's ``apt-get install``)."""

    def __init__(self) -> None:
        self.step = ""

    def feed(self, line: str) -> str | None:
        line = line.rstrip("\n")
        m = _STEP.match(line)
        if m is not None:
            what = m[2] if len(m[2]) <= 60 else m[2][:57] + "..."
            self.step = f"step {m[1]}"
            return f"{self.step}: {what}"
        for pattern, verb in ((_UNPACK, "unpacking"), (_SETUP, "setting up"), (_TRIGGERS, "triggers of")):
            m = pattern.match(line)
            if m is not None:
                return f"{self.step}: {verb} {m[1]}" if self.step else f"{verb} {m[1]}"
        return None
