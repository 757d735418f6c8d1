"""bakegen: one schema-validated spec for a matrix of container images.

Pipeline: spec (load + validate) -> model (resolved targets) -> emitters
(render, workflow, matrix) -> runners (bake, smoke) -> cli.
"""

__version__ = "0.1.0"

from bakegen import startup as _startup

_startup.install()  # before anything heavy is imported: see bakegen/startup.py
