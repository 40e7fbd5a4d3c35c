"""Optional third-party packages: import them on demand, or say which extra installs them."""

from __future__ import annotations

import importlib
from types import ModuleType

from pesprobe.potentials.registry import SpecError


class MissingExtra(SpecError):
    """A SPEC whose third-party package is not installed (or does not import).

    Attributes
    ----------
    package : str
        The module that could not be imported (``"sevenn"``).
    extra : str
        The pesprobe extra that installs it (``pip install 'pesprobe[<extra>]'``).
    """

    def __init__(self, package: str, extra: str, reason: str) -> None:
        super().__init__(f"{package} is not usable ({reason}); install it with: pip install 'pesprobe[{extra}]'")
        self.package = package
        self.extra = extra


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtra` naming the extra that installs it.

    Any import failure counts (not only an absent package): a broken install, an incompatible
    torch, a missing shared library.
    """
    package = module.split(".")[0]
    try:
        importlib.import_module(package)
        return importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - every import failure means "not usable here"
        absent = isinstance(exc, ModuleNotFoundError) and exc.name == package
        reason = "not installed" if absent else f"{type(exc).__name__}: {exc}"
        raise MissingExtra(package, extra, reason) from exc
