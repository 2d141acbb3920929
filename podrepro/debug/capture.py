"""What ``--core`` and ``--strace`` add to a run, build or test, and what they report after it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from podrepro.reporting import Notify


@dataclass(frozen=True)
class Capture:
    root: Path
    arch: str
    since: float
    extra_args: tuple[str, ...] = ()            # podman options (the core limit)
    env: dict[str, str] = field(default_factory=dict)  # QEMU_STRACE and where its log goes
    trace_dir: Path | None = None
    cores: bool = False

    def finish(self, dirs: Sequence[Path], *, command: Sequence[str], workdir: Path, image: str,
               say: Notify) -> None:
        """Keep the cores written since the start (and say where), summarise the traces."""
        from podrepro.debug import cores, strace
        from podrepro.debug.outdir import shown

        if self.cores:
            kept = cores.collect(self.root, dirs, self.arch, self.since, command=command, workdir=workdir, image=image)
            for c in kept:
                where = shown(c.path, self.root)
                say(f"{c.name} dumped core: {where} (open it: podrepro debug {self.arch} --core {where})")
        if self.trace_dir is not None:
            for line in strace.summarise(self.trace_dir).lines(shown(self.trace_dir, self.root)):
                say(line)


def start(root: Path, arch: str, *, core: bool, trace: bool) -> Capture:
    """Before the run: the core limit option (one-line error when the host forbids cores), the
    trace folder and its environment."""
    from podrepro.debug import cores, strace

    extra = tuple(cores.ulimit_args()) if core else ()
    trace_dir, env = strace.prepare(root, arch) if trace else (None, {})
    # a second early: cores are matched by mtime, and a core's mtime may round down
    return Capture(root, arch, time.time() - 1, extra, env, trace_dir, core)
