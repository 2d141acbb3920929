"""``podrepro doctor``: is this host ready to run foreign-architecture containers?

``env`` reads the host (through a ``DoctorEnv``, so unit tests point every check at fakes),
``checks`` turns what it read into Findings, each with the exact command that fixes it,
``probe`` executes a tiny foreign binary (the proof a handler works) and ``report`` runs them all
into one report (human or JSON; the JSON schema is documented there).
"""
