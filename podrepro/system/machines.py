"""Full-system VMs (``--system``): for each architecture, Debian's kernel package and the qemu
machine it boots on.

References (what debvm, Debian's rootless VM tool, and QEMU's docs use):

- arm (armhf): ``linux-image-armmp-lpae`` on ``-M virt`` with a Cortex-A15 (LPAE: more than
  4 GiB of physical addresses, so the VM's memory can be large); PL011 console ``ttyAMA0``.
  debvm's armhf default is the same kernel on ``virt``.
- arm64: ``linux-image-arm64`` on ``-M virt -cpu cortex-a57``; ``ttyAMA0``.
- mips (mipsel): ``linux-image-4kc-malta`` on ``-M malta`` (QEMU's MIPS reference board; the
  kernel flavour Debian builds for it); 16550 console ``ttyS0``. That kernel has no highmem: it
  uses 256 MiB whatever ``-m`` says, so the initramfs (compressed while it is unpacked, then
  unpacked) must fit in about 200 MiB (measured: 42 + 141 MiB boot): the base profile's image does, a compiler's does not.
- s390x: ``linux-image-s390x`` on ``-M s390-ccw-virtio``; SCLP console ``ttysclp0``.

The VM gets no network and no disk: its root filesystem is an initramfs holding the image and
the project (``podrepro.system.initramfs``), so no driver module is needed to reach it.
"""

from __future__ import annotations

from dataclasses import dataclass

from podrepro.arches import Arch
from podrepro.errors import UsageError


@dataclass(frozen=True)
class Machine:
    kernel_package: str        # Debian's metapackage; its "linux-image-VERSION-FLAVOUR" dependency is fetched
    qemu: str                  # the qemu-system binary
    args: tuple[str, ...]      # machine, CPU
    console: str
    memory_mib: int            # default -m
    ram_budget_mib: int        # initramfs, compressed + unpacked, the machine can hold (0: what -m gives)
    smp: int = 1
    package: str = ""          # the host package that has ``qemu`` (for the hint)


MACHINES: dict[str, Machine] = {
    "arm": Machine("linux-image-armmp-lpae", "qemu-system-arm", ("-M", "virt", "-cpu", "cortex-a15"), "ttyAMA0",
                   3072, 0, smp=2, package="qemu-system-arm"),
    "arm64": Machine("linux-image-arm64", "qemu-system-aarch64", ("-M", "virt", "-cpu", "cortex-a57"), "ttyAMA0",
                     3072, 0, smp=2, package="qemu-system-arm"),
    "mips": Machine("linux-image-4kc-malta", "qemu-system-mipsel", ("-M", "malta",), "ttyS0", 256, 200,
                    package="qemu-system-mips"),
    "s390x": Machine("linux-image-s390x", "qemu-system-s390x", ("-M", "s390-ccw-virtio",), "ttysclp0", 3072, 0,
                     smp=2, package="qemu-system-misc"),
}


def machine_for(arch: Arch) -> Machine:
    m = MACHINES.get(arch.alias)
    if m is None:
        raise UsageError(f"--system has no VM for {arch.alias}",
                         hint=f"--system knows {', '.join(MACHINES)}")
    return m
