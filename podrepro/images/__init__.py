"""podrepro's images: recipes and their content hashes, the cache index, seeding, building and
verifying, and managing and sharing what was built.

A recipe is everything that decides an image's content, minus things that do not (the mirror):
base = arch + suite + variant + installer + podrepro's recipe version (+ a rootfs digest or registry ref
when the base does not come from mmdebstrap); profile layer = base hash + Containerfile bytes +
package list. Its SHA-256 names the image: ``localhost/podrepro/<profile>:<arch>-<hash12>``.
Images are built under a temporary tag and only tagged with their real name after they passed
verification, so a failed or interrupted build never leaves a "good" tag on a bad image.

recipe: Recipe, BaseSource, hashing, suite and mirror resolution; target: the image a
configuration asks for; index: images.json; seed: starting a bootstrap from an earlier base;
base: bootstrapping, importing or pulling a base; build: the Builder (locks, layers,
verification, tags); store: ls/rm/prune; sharing: export/import/push/pull.
"""
