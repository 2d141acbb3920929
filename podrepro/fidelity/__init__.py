"""Fidelity: what qemu-user gets wrong compared with a board (``artefacts``: the known classes,
each with its evidence) and how a host's setup can trigger them (``host``)."""
