"""The three finmatch services: registry, matching and gateway."""
