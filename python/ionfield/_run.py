"""Running scenarios: `run`, `resume` and `presets`, over the command line's own code."""

import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Union

from . import _native

Progress = Union[bool, Callable[[str], Any]]


def _toml(value: Any, key: str) -> str:
    """`value` as a TOML literal for `--set key=…` (strings are quoted: "2 h")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"set[{key!r}]: {value} is not a finite number")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, os.PathLike):
        return json.dumps(os.fspath(value))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v, key) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml(v, key)}" for k, v in value.items()) + " }"
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return _toml(value.tolist(), key)
    raise TypeError(
        f"set[{key!r}]: cannot write a {type(value).__name__} as a config value; "
        "use a number, str, bool, list or dict"
    )


def _sink(progress: Progress) -> Callable[[str], Any]:
    if progress is True:
        return lambda line: print(line, file=sys.stdout, flush=True)
    if progress is False or progress is None:
        return lambda line: None
    if callable(progress):
        return progress
    raise TypeError("progress: give True (print), False (quiet) or a callable taking one str")


def run(
    scenario: Union[str, os.PathLike, None] = None,
    out: Union[str, os.PathLike, None] = None,
    *,
    set: Optional[Mapping[str, Any]] = None,
    backend: str = "auto",
    overwrite: bool = False,
    progress: Progress = True,
    checkpoint_every: Union[float, str, None] = None,
    stop_at: Union[float, str, None] = None,
) -> Path:
    """Runs `scenario` and returns its run folder.

    scenario: a preset name (see `presets()`), a config file path, or None for the built-in
        default (Fe CDT over 24 h at 64³: minutes).
    out: the run folder (default `out/<scenario name>`, as the command line).
    set: overrides as the command line's `--set KEY=VALUE`, e.g.
        {"grid.shape": [16, 16, 16], "time.end": "2 h", "dosing[0].amount_mm": 4.0};
        values are Python values (a str is a TOML string).
    backend: "auto", "cpu" or "gpu".
    overwrite: replace an earlier run in `out`.
    progress: True prints progress lines, False is quiet, a callable gets each line.
    checkpoint_every, stop_at: model time in s, or a str with a unit ("2 h"), as
        `--checkpoint-every` and `--stop-at`.

    Raises IonfieldError(message, exit_code) for bad input (exit code 2, the message names
    the file, the field and the fix), a failed simulation (1) or an interrupt (130; the run
    folder keeps a checkpoint: `resume(out)`).
    """
    argv = ["ionfield", "run"]
    if scenario is not None:
        argv.append(os.fspath(scenario))
    if out is None:
        out = Path("out") / _native.scenario_name(argv[2] if len(argv) > 2 else None, _sets(set))
    argv += ["--out", os.fspath(out), "--backend", backend]
    for s in _sets(set):
        argv += ["--set", s]
    if overwrite:
        argv.append("--overwrite")
    if checkpoint_every is not None:
        argv += ["--checkpoint-every", _time(checkpoint_every)]
    if stop_at is not None:
        argv += ["--stop-at", _time(stop_at)]
    _native.run_cli(argv, _sink(progress))
    return Path(out)


def _time(value: Union[float, str]) -> str:
    """A model time for the command line: seconds, or a str with a unit ("2 h")."""
    return value if isinstance(value, str) else repr(float(value))


def _sets(overrides: Optional[Mapping[str, Any]]) -> list:
    return [f"{k}={_toml(v, k)}" for k, v in (overrides or {}).items()]


def resume(path: Union[str, os.PathLike], *, progress: Progress = True) -> Path:
    """Continues the interrupted or stopped run in `path` (`ionfield resume`); returns `path`."""
    _native.run_cli(["ionfield", "resume", os.fspath(path)], _sink(progress))
    return Path(path)


def presets() -> dict:
    """The built-in therapy presets: {name: description}."""
    return dict(_native.presets())
