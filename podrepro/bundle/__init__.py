"""Repro bundles: ``podrepro bundle`` writes one, ``podrepro replay`` replays it."""
