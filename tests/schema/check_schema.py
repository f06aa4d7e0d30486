"""Checks docs/config.schema.json with the jsonschema package (run by tests/schema.rs):
python3 tests/schema/check_schema.py SCHEMA CONFIG_DIR

Every scenario file the project ships (configs/, sweep files aside: they have their own
format) must validate; files with a misspelt key, a wrong type or a unit-less time must
not, and the error must point at the key."""

import copy
import glob
import json
import os
import sys
import tomllib

import jsonschema

schema = json.load(open(sys.argv[1]))
validator = jsonschema.Draft202012Validator(schema)
jsonschema.Draft202012Validator.check_schema(schema)
files = sorted(p for p in glob.glob(os.path.join(sys.argv[2], "**", "*.toml"), recursive=True)
               if os.sep + "sweeps" + os.sep not in p)
assert len(files) >= 30, files
for p in files:
    with open(p, "rb") as f:
        doc = tomllib.load(f)
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
    assert not errors, f"{p}: {errors}"
print(f"{len(files)} scenario files valid")

with open(os.path.join(sys.argv[2], "therapies", "fe_fenton_cdt.toml"), "rb") as f:
    base = tomllib.load(f)
bad = {
    "grid.shpe": lambda d: d.setdefault("grid", {}).__setitem__("shpe", [8, 8, 8]),
    "grid.voxel_um": lambda d: d.setdefault("grid", {}).__setitem__("voxel_um", "twenty"),
    "time.end": lambda d: d.setdefault("time", {}).__setitem__("end", 600),
    "species.O2.diffusion_um2_per_s": lambda d: d.setdefault("species", {}).setdefault("O2", {}).__setitem__(
        "diffusion_um2_per_s", "fast"),
    "output.zarr": lambda d: d.setdefault("output", {}).__setitem__("zarr", "yes"),
    "dosing.0.amount_mm": lambda d: d["dosing"][0].__setitem__("amount_mm", [1, 2]),
}
for where, mutate in bad.items():
    doc = copy.deepcopy(base)
    mutate(doc)
    errors = list(validator.iter_errors(doc))
    assert errors, f"{where}: accepted"
    # An optional table is `anyOf [table, null]`: the error under it is in its context.
    stack, paths = list(errors), []
    while stack:
        e = stack.pop()
        paths.append(".".join(map(str, e.absolute_path)))
        stack.extend(e.context or [])
    key = where.rsplit(".", 1)[0] if where == "grid.shpe" else where
    assert any(p == key for p in paths), f"{where}: errors at {paths}"
print(f"{len(bad)} broken files refused at the right key")
