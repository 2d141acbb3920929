"""The host's binfmt_misc, as the kernel sees it: read it, judge it per architecture, plan a fix.

How the kernel picks a handler (fs/binfmt_misc.c): ``bm_register_write`` adds every new entry at
the *head* of its list (``list_add``) and ``check_file`` walks that list from the head, skipping
disabled entries, and returns the first whose magic matches ``(header[offset+i] ^ magic[i]) &
mask[i] == 0`` for every byte. So the most recently registered enabled match wins, names do not
matter, and a disabled entry is as good as absent.

/proc does not show the registration order. We order entries by inode number, newest last:
binfmt_misc gets each entry's inode from ``get_next_ino()`` at registration, which grows
monotonically per CPU (in batches of 1024), so it is right in practice but not guaranteed — which
is why more than one enabled match is always reported as shadowing, and why ``podrepro doctor``
also *executes* a probe binary: the probe is the ground truth. (File times are useless here:
enabling or disabling an entry bumps its mtime.)

podrepro only ever creates, enables or removes entries named ``podrepro-<qemu>`` (one per qemu
binary, so arm and armel share ``podrepro-arm``) and their persistence files
``<binfmt.d>/zz-podrepro-<qemu>.conf``. The ``zz-`` prefix matters: systemd-binfmt registers
the files of all binfmt.d directories sorted by file name, so sorting after the distro's
``qemu-*.conf`` makes podrepro's entry the newest after every boot too — the one that wins.

Flags podrepro registers: ``F`` (the kernel opens the interpreter at registration, so it runs
inside containers that do not contain qemu), ``C`` (credentials from the binary, not the
interpreter: setuid/sudo inside containers work; implies ``O``) and ``P`` (preserve argv[0]) only
where the interpreter can tell it was started with P — see ``preserve_argv0_supported``.
"""
