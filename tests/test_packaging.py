"""The project's wiring: packages listed for install, public API documented, reproductions complete."""

import importlib
import inspect
import pkgutil
import tomllib

import nips23jax
from nips23jax.core import reproduce
from nips23jax.core.config import load_config


def test_every_subpackage_is_installed(repo_root):
    listed = set(tomllib.loads((repo_root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {"nips23jax"} | {
        "nips23jax." + ".".join(p.relative_to(repo_root / "nips23jax").parts[:-1])
        for p in (repo_root / "nips23jax").rglob("__init__.py")
        if p.parent != repo_root / "nips23jax"
    }
    assert on_disk - listed == set(), "add these to [tool.setuptools].packages in pyproject.toml"


def _public_modules():
    for info in pkgutil.walk_packages(nips23jax.__path__, "nips23jax."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            yield importlib.import_module(info.name)


def test_public_functions_have_docstrings():
    missing = []
    for module in _public_modules():
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and not inspect.getdoc(obj):
                missing.append(f"{module.__name__}.{name}")
    assert not missing, missing


def test_every_reproduction_has_config_variants_and_notebook(repo_root):
    import nips23jax.reproductions  # noqa: F401

    assert "tiny-lm" in reproduce.names()
    for name in reproduce.names():
        r = reproduce.get(name)
        full, quick = load_config(r.config), load_config(r.config, quick=True)
        assert full.reproduction == quick.reproduction == name
        assert full != quick, f"{name}: the quick config must differ from the full one"
        assert r.notebook and (repo_root / r.notebook).is_file(), f"{name}: notebook {r.notebook} missing"
        assert (repo_root / "configs" / f"{r.config}.py").is_file()
        doc = importlib.import_module(f"nips23jax.configs.{r.config}").__doc__
        assert f"nips23jax reproduce {name}" in doc, f"{name}: config docstring must give the run command"
