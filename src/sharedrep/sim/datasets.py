"""Loaders for the real datasets used in examples and tests.

The data are never copied into the project; they are read from a shared data folder:

1. the ``root`` argument, if given;
2. otherwise the environment variable ``SHAREDREP_DATA``;
3. otherwise ``shared/data`` next to the project: ``<project root>/../shared/data`` for a
   source checkout (the folder that holds ``src/`` and ``pyproject.toml``), and, since an
   installed package does not know where its project was, ``../shared/data`` and
   ``shared/data`` seen from the current folder and its parents (up to three levels).

``root`` (or ``SHAREDREP_DATA``) may point at the data folder or at the dataset folder
itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Recording", "load_monkey_reach", "data_root", "reach_trials"]

ENV_VAR = "SHAREDREP_DATA"
_MONKEY_FILES = {"C": "chewie_demo.mat", "M": "mihi_demo.mat"}
_BLOCKS = {"train": "tr", "test": "te"}


def _source_project_root() -> Path | None:
    """The project root (the folder holding ``src/`` and ``pyproject.toml``) when this
    module is imported from a source checkout (``<root>/src/sharedrep/sim/``), else None."""
    parents = Path(__file__).resolve().parents  # sim, sharedrep, src, project root, ...
    if len(parents) < 4 or parents[2].name != "src":
        return None
    project = parents[3]
    return project if (project / "pyproject.toml").is_file() else None


def _candidates(root=None) -> list[Path]:
    """Data folders to search, in order (see the module docstring)."""
    if root is not None:
        return [Path(root).expanduser()]
    out = []
    env = os.environ.get(ENV_VAR)
    if env:
        out.append(Path(env).expanduser())
    project = _source_project_root()
    if project is not None:  # a source checkout (editable install)
        out.append(project.parent / "shared" / "data")
    here = Path.cwd().resolve()
    for folder in [here, *here.parents][:4]:
        out.extend([folder.parent / "shared" / "data", folder / "shared" / "data"])
    return list(dict.fromkeys(out))


def data_root(dataset: str, root=None) -> Path:
    """Folder of ``dataset`` (e.g. ``"monkey_reach"``), searched as described above.

    Raises
    ------
    FileNotFoundError
        Naming every place that was searched and how to point at the data.
    """
    tried = []
    for base in _candidates(root):
        for folder in (base / dataset, base):
            tried.append(folder)
            if folder.name == dataset and folder.is_dir():
                return folder
    raise FileNotFoundError(
        f"dataset {dataset!r} not found; looked in: "
        + ", ".join(str(t) for t in dict.fromkeys(tried))
        + f". Pass root=... or set the environment variable {ENV_VAR} to the folder that "
        f"contains {dataset}/"
    )


@dataclass(frozen=True)
class Recording:
    """One recording (monkey x block) of the centre-out reaching data.

    Attributes
    ----------
    name : str
        ``"C_train"``, ``"C_test"``, ``"M_train"`` or ``"M_test"``.
    monkey : str
        ``"C"`` (Chewie) or ``"M"`` (Mihi).
    block : str
        ``"train"`` or ``"test"``: the block of the source file (``*tr`` / ``*te``
        keys); here simply two recordings.
    neural : ndarray (T, N), float64
        Neural activity per bin (spike counts for C, rates for M; the source calls it ``Y``).
    behavior : ndarray (T, 2), float64
        Hand velocity (x, y) per bin (the source calls it ``X``).
    target : ndarray (T,), int64
        Reach-target label per bin.
    trial : ndarray (T,), int64
        Reach ids derived by :func:`reach_trials`.
    behavior_names : tuple of str
    source : Path
    """

    name: str
    monkey: str
    block: str
    neural: np.ndarray
    behavior: np.ndarray
    target: np.ndarray
    trial: np.ndarray
    behavior_names: tuple = ("velocity_x", "velocity_y")
    source: Path | None = None

    @property
    def n_trials(self) -> int:
        """int: Number of reach segments."""
        return int(np.unique(self.trial).size)


def reach_trials(target, velocity, jump: float | None = 6.0) -> np.ndarray:
    """Reach ids for concatenated reaches.

    A new reach starts where the target label changes, or -- with ``jump`` -- where the
    hand velocity changes by more than ``jump`` times the median absolute bin-to-bin
    change (consecutive reaches to the same target are concatenated with a velocity
    discontinuity). Consecutive reaches to the same target without such a jump stay
    merged.

    Returns
    -------
    trial : ndarray of int64 (T,)
        0, 1, 2, ... in time order.
    """
    target = np.asarray(target).ravel()
    velocity = np.asarray(velocity, dtype=float)
    new = np.zeros(target.size, dtype=bool)
    new[1:] = target[1:] != target[:-1]
    if jump is not None and target.size > 1:
        dv = np.linalg.norm(np.diff(velocity, axis=0), axis=1)
        med = float(np.median(dv))
        if med > 0:
            new[1:] |= dv > jump * med
    return np.cumsum(new).astype(np.int64)


def load_monkey_reach(root=None, *, jump: float | None = 6.0) -> list[Recording]:
    """Load the centre-out reaching data of two monkeys (four recordings).

    Public demo data of Dyer et al., "A cryptography-based approach for movement
    decoding", Nature Biomedical Engineering 1, 967-976 (2017) (KordingLab/DAD,
    ``data/demo/``). Neural activity of motor cortex and hand velocity per time bin;
    bins are consecutive within the movement period of each reach and reaches are
    concatenated; the bin width is not documented.

    The source files name behaviour ``X`` and neural activity ``Y``; here they are
    returned as ``behavior`` and ``neural``. Each block (``tr`` / ``te``) of each monkey is
    returned as its own recording (monkey M's blocks even have different neurons).

    Parameters
    ----------
    root : str or Path, optional
        The data folder (containing ``monkey_reach/``) or ``monkey_reach/`` itself;
        default: environment variable ``SHAREDREP_DATA``, else ``../shared/data``
        relative to the project root.
    jump : float or None
        Reach splitting threshold of :func:`reach_trials`.

    Returns
    -------
    list of Recording
        ``C_train``, ``C_test``, ``M_train``, ``M_test``.

    Raises
    ------
    FileNotFoundError
        The folder or one of its files is missing.
    ValueError
        A file is unreadable, lacks a key, or has inconsistent shapes.
    """
    from scipy.io import loadmat

    folder = data_root("monkey_reach", root)
    out = []
    for monkey, fname in _MONKEY_FILES.items():
        path = folder / fname
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing (expected in {folder})")
        try:
            mat = loadmat(path)
        except Exception as exc:
            raise ValueError(f"{path} is not a readable MATLAB file: {exc}") from exc
        for block, suffix in _BLOCKS.items():
            keys = {"neural": "Y" + suffix, "behavior": "X" + suffix, "target": "T" + suffix}
            missing = [k for k in keys.values() if k not in mat]
            if missing:
                raise ValueError(f"{path} lacks the variables {missing}; truncated or wrong file?")
            neural = np.asarray(mat[keys["neural"]], dtype=np.float64)
            behavior = np.asarray(mat[keys["behavior"]], dtype=np.float64)
            target = np.asarray(mat[keys["target"]]).ravel().astype(np.int64)
            T = neural.shape[0]
            if neural.ndim != 2 or behavior.shape != (T, 2) or target.shape != (T,):
                raise ValueError(
                    f"{path}: inconsistent shapes {keys['neural']} {neural.shape}, "
                    f"{keys['behavior']} {behavior.shape}, {keys['target']} {target.shape}; "
                    "expected (T, N), (T, 2), (T, 1)"
                )
            if not (np.all(np.isfinite(neural)) and np.all(np.isfinite(behavior))):
                raise ValueError(f"{path}: block {suffix} contains NaN or inf")
            out.append(
                Recording(
                    name=f"{monkey}_{block}",
                    monkey=monkey,
                    block=block,
                    neural=neural,
                    behavior=behavior,
                    target=target,
                    trial=reach_trials(target, behavior, jump),
                    source=path,
                )
            )
    return out
