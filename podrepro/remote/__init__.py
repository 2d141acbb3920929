"""Remote podman engines (``--connection NAME``): the connection, the host behind it, the synced tree."""
