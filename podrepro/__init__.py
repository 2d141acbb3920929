"""podrepro: reproduce foreign-architecture failures in rootless, emulated podman containers."""

__version__ = "0.1.0"
