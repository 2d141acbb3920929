"""Full-system VMs: ``run|test --system ARCH`` (a second opinion with the target's own kernel)."""
