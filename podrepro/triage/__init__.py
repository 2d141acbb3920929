"""Triage: what kind of failure is it? Repeated runs with a failure rate (``repeat``, ``stats``),
qemu-user's own words told from the program's (``signs``), the same test across comparators
(CPU models, native amd64 and i386, single-threaded) and the verdict rules (``verdict``)."""
