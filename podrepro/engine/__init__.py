"""The only place that talks to podman (podman-py and the CLI), buildah and mmdebstrap."""
