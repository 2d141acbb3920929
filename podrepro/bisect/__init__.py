"""``podrepro bisect``: ``git bisect run`` on an architecture, in a worktree of its own."""
