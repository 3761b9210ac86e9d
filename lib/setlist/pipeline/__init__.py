"""Pipeline steps: each reads through ``lake``, calls transforms, writes through ``lake``."""
