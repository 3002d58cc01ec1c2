"""Experiments, one module per paper; importing this package registers them all.

To add one: write ``nips23jax/reproductions/<name>.py`` that calls
``nips23jax.core.reproduce.register(Reproduction(...))`` at import, add its config to ``configs/``
and its notebook to ``colab/``. Every public module of this package is imported here, so a new
file registers itself; a module that fails to import fails loudly (no experiment is skipped
silently).
"""

import importlib as _importlib
import pkgutil as _pkgutil

for _info in sorted(_pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _info.name.startswith("_"):
        _importlib.import_module(f"{__name__}.{_info.name}")
