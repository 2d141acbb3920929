"""Matrix runs: ``podrepro test arm,mips,s390x`` (and ``build``, ``run``; ``all``): one child
podrepro per architecture, up to ``--jobs`` at once, each with its own log, a live status line
per architecture, and a summary, JUnit and JSON at the end (``plan``, ``runner``, ``report``)."""
