"""Load networks for a process from `module:attribute` targets or spec files.

Every process of a deployment (coordinator, actors, `nons up`) loads the same targets
and must end up with the same networks under the same names, so loading is strict: a
target that names nothing usable, or two targets defining different networks under
one name, is refused with a message that says what to fix.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from nons.core.errors import ConfigurationError, SpecError
from nons.core.network import NoN

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Sequence

__all__ = ("SPEC_SUFFIXES", "load_networks", "load_targets")

SPEC_SUFFIXES = (".json", ".yaml", ".yml")
"""File name endings read as a `NetworkSpec` file."""


def load_networks(target: str, *, search_path: str | os.PathLike[str] | None = None) -> list[NoN]:
    """The networks one target names.

    Args:
        target: `package.module:attribute` (the attribute a `NoN`, a list or tuple of
            them, or a zero-argument callable returning either; `attribute` may be
            dotted) or the path of a `.json`, `.yaml` or `.yml` spec file.
        search_path: directory put first on `sys.path` before importing, as
            `python -m` does with the current directory (default: the current one).

    Raises:
        SpecError: the file cannot be read or the module, attribute or value is not
            usable; the message names the target and the problem.
        ConfigurationError: the module defines two different networks under one name.
    """
    target = target.strip()
    if not target:
        raise SpecError("empty target: give MODULE:ATTRIBUTE or a .json/.yaml/.yml spec file")
    if target.lower().endswith(SPEC_SUFFIXES):
        networks = [NoN.load(target)]
    elif ":" in target:
        networks = _from_module(target, search_path)
    elif Path(target).exists():
        raise SpecError(f"spec file {target} must end in .json, .yaml or .yml")
    else:
        raise SpecError(
            f"target {target!r} is neither MODULE:ATTRIBUTE (e.g. examples.quickstart:network) "
            "nor a .json/.yaml/.yml spec file"
        )
    return _unique(networks, {}, target)


def load_targets(
    targets: Sequence[str], *, search_path: str | os.PathLike[str] | None = None
) -> list[NoN]:
    """The networks of several targets, each name once.

    The same definition loaded twice is kept once; two definitions under one name
    (sub-networks included) are refused, since their processes would disagree.

    Raises:
        SpecError: as `load_networks`, or when no target is given.
        ConfigurationError: two targets define different networks under one name.
    """
    if not targets:
        raise SpecError("give at least one target: MODULE:ATTRIBUTE or a spec file")
    seen: dict[str, tuple[str, str]] = {}
    loaded: list[NoN] = []
    for target in targets:
        loaded.extend(_unique(load_networks(target, search_path=search_path), seen, target))
    return loaded


def _from_module(target: str, search_path: str | os.PathLike[str] | None) -> list[NoN]:
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise SpecError(f"target {target!r} must be MODULE:ATTRIBUTE, both parts non-empty")
    _ensure_on_path(Path(search_path) if search_path is not None else Path.cwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(f"{missing}."):
            raise SpecError(
                f"target {target!r}: no module named {module_name!r} (run from the directory "
                "that holds it, or put it on PYTHONPATH)"
            ) from exc
        raise SpecError(f"target {target!r}: importing {module_name!r} failed: {exc}") from exc
    except Exception as exc:
        raise SpecError(
            f"target {target!r}: importing {module_name!r} raised {type(exc).__name__}: {exc}"
        ) from exc
    value: object = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise SpecError(
                f"target {target!r}: module {module_name!r} has no attribute {attribute!r}"
            ) from None
    if callable(value) and not isinstance(value, NoN):
        value = _call(target, value)
    return _as_networks(target, value)


def _call(target: str, factory: Callable[[], object]) -> object:
    try:
        value = factory()
    except TypeError as exc:
        raise SpecError(
            f"target {target!r}: a callable target must take no arguments ({exc})"
        ) from exc
    except ConfigurationError:
        raise
    except Exception as exc:
        raise SpecError(
            f"target {target!r}: calling it raised {type(exc).__name__}: {exc}"
        ) from exc
    if hasattr(value, "__await__"):
        close = getattr(value, "close", None)
        if callable(close):
            close()  # never awaited: close the coroutine so Python does not warn
        raise SpecError(f"target {target!r}: the callable must return networks, not a coroutine")
    return value


def _as_networks(target: str, value: object) -> list[NoN]:
    if isinstance(value, NoN):
        return [value]
    if isinstance(value, list | tuple) and value and all(isinstance(v, NoN) for v in value):
        return list(value)
    raise SpecError(
        f"target {target!r} is a {type(value).__name__}, not a NoN, a non-empty list or "
        "tuple of NoN, or a zero-argument callable returning one"
    )


def _unique(networks: list[NoN], seen: dict[str, tuple[str, str]], target: str) -> list[NoN]:
    """Drop repeats of one definition; refuse two definitions under one name."""
    kept: list[NoN] = []
    for network in networks:
        for member in network.networks():
            known = seen.get(member.name)
            if known is not None and known[0] != member.fingerprint:
                raise ConfigurationError(
                    f"two different networks are named {member.name!r}: one from {known[1]} "
                    f"(fingerprint {known[0]}) and one from {target} (fingerprint "
                    f"{member.fingerprint}); rename one, processes must agree on each name"
                )
        if network.name in seen:
            continue
        for member in network.networks():
            seen.setdefault(member.name, (member.fingerprint, target))
        kept.append(network)
    return kept


def _ensure_on_path(directory: Path) -> None:
    resolved = directory.resolve()
    for entry in sys.path:
        try:
            if Path(entry or ".").resolve() == resolved:
                return
        except OSError:
            continue
    sys.path.insert(0, str(resolved))
