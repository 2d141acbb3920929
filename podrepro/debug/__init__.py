"""Debugging what was reproduced: gdb through QEMU's gdbstub (``session``, ``tools``), core files
of emulated crashes (``cores``) and qemu-user's syscall traces (``strace``). Everything these
write in a project goes under its ``.podrepro/`` folder (``outdir``)."""
