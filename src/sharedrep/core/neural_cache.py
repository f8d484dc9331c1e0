"""What refits on unchanged neural activity keep and reuse: its statistics and reductions.

A circular-shift permutation test refits the model many times on the same neural
activity, with only the behaviour shifted against it. Two parts of every fit depend on
the neural activity alone, and they are most of its cost:

* **the data pass's neural statistics**: per CV chunk, the count ``n``, the column sums
  ``s_x`` and the cross-products ``X'X`` of the lag-embedded rows (``n q^2`` flops per
  subject). They depend on the activity ``X``, the lags, the kept rows, their order in
  chunks and the preconditioning centre. :func:`sharedrep.core.data_pass.subject_statistics`
  keeps them (:func:`keep_pass`) and, for a later pass over the *same array object*
  whose plan (rows, chunks, centre) is equal, takes them (:func:`find_pass`) and
  computes only ``X'Y``, ``s_y`` and ``Y'Y`` (``2 n q p`` flops: the rows are gathered
  and multiplied with the behaviour, :func:`sharedrep.core.solver.behavior_statistics`).
  These equal those of a full pass to rounding (another BLAS product), not bit for bit.
* **each fold's reduction** ``G = Q M Q'`` of its standardised training Gram matrix
  (``4 q^3 / 3`` flops, :func:`sharedrep.core.solver.ridge_path`). ``G`` is a function of
  the fold's training ``n``, ``s_x`` and ``X'X`` alone; :func:`sharedrep.core.solver.fold_path`
  keeps each reduction under a digest of exactly those inputs (:func:`fold_key`: BLAKE2b
  of their bytes, in the order they are combined) and a later fold whose inputs have the
  same digest takes it: the reduction of the same matrix, so bit for bit what computing
  it again gives. Only the behaviour-dependent solves (``Q' B``, one banded or
  tridiagonal solve per alpha, ``Q`` applied once) are computed again. When the block
  expects many reuses (:attr:`NeuralCache.reuses`, :data:`EIGEN_REUSES`), a fold keeps
  the eigendecomposition ``G = V diag(lam) V'`` instead (computed once besides the
  reduction the first fit uses); each later fold's solves are then two matrix products,
  equal to the reduction's to rounding.

Anything that changes the neural side (other rows kept, e.g. behaviour samples omitted
as missing elsewhere, other folds, lags or centres, another array, a float32 pass) does
not match and is computed as usual. An array changed in place between fits is *not*
noticed: the data must not be edited while a block is open (the permutation test holds
its validated arrays). The block keeps at most ``max_bytes`` (reductions: one ``q x q``
float64 array per fold and subject; statistics: one per chunk); once full, or after
:meth:`NeuralCache.freeze`, what is computed is used but not kept.

The cache lives in this process until its block ends; nested blocks use the innermost.
It belongs to the context that opened it (a :class:`contextvars.ContextVar`): the worker
threads of a fit inside the block see it, fits run by other threads of the program do not.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import threading
import weakref

import numpy as np

__all__ = [
    "NeuralCache",
    "reuse_neural_side",
    "fold_key",
    "lookup",
    "keep",
    "find_pass",
    "keep_pass",
    "eigen_pays",
    "suspended",
    "wants",
]

#: default bound on the bytes one block keeps
MAX_BYTES = 2 * 2**30

#: expected reuses from which a fold keeps the eigendecomposition of its Gram matrix
#: rather than its reduction. The eigendecomposition costs about 4 (q = 800) to 3
#: (q = 1600) reductions more, once; each later fold then needs two matrix products
#: instead of applying the reflectors twice and a banded solve per alpha (measured on
#: one core: 16 -> 4 ms per fold at q = 800), so it pays after 15 to 60 reuses.
EIGEN_REUSES = 60

_LOCK = threading.Lock()
#: the open block of this context: a fit's worker threads run in a copy of the context
#: that submitted them (:func:`sharedrep.utils.parallel.thread_map`); fits started by
#: other threads of the program do not see it
_BLOCK: contextvars.ContextVar = contextvars.ContextVar("sharedrep_neural_cache", default=None)


class NeuralCache:
    """What one :func:`reuse_neural_side` block keeps.

    Attributes
    ----------
    max_bytes : int
        Bound on the bytes kept.
    nbytes : int
        Bytes kept.
    hits, misses : int
        Fold reductions taken from the cache / computed (while the block was open).
    pass_hits : int
        Data passes that took their neural statistics from the cache.
    frozen : bool
        True after :meth:`freeze`: nothing more is kept.
    reuses : int
        How many refits are expected to take what is kept (set by the caller, e.g.
        the number of permutations; 0 when unknown): from :data:`EIGEN_REUSES` on,
        folds keep eigendecompositions (:func:`eigen_pays`).
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self.nbytes = 0
        self.hits = self.misses = self.pass_hits = 0
        self.frozen = False
        self.reuses = 0
        self._reductions: dict[bytes, object] = {}
        self._passes: dict[tuple, list] = {}  # (id(X), lags) -> [(ref(X), plan, stats)]
        self._digests: dict[int, tuple] = {}  # id(array) -> (weak reference, digest)

    def __len__(self) -> int:
        return len(self._reductions) + sum(len(v) for v in self._passes.values())

    def freeze(self) -> None:
        """Keep nothing more (what is kept is still used)."""
        self.frozen = True

    def _room(self, nbytes: int) -> bool:
        return not self.frozen and self.nbytes + nbytes <= self.max_bytes

    def _digest(self, a: np.ndarray) -> bytes:
        """Digest of an array's dtype, shape and bytes, computed once per array object
        (the arrays of a fit's statistics are not changed after they are made)."""
        found = self._digests.get(id(a))
        if found is not None and found[0]() is a:
            return found[1]
        a_c = np.ascontiguousarray(a)
        h = hashlib.blake2b(digest_size=20)
        h.update(f"{a_c.dtype.str}{a_c.shape}".encode())
        h.update(memoryview(a_c).cast("B"))
        digest = h.digest()
        try:
            self._digests[id(a)] = (weakref.ref(a), digest)
        except TypeError:  # not weakly referenceable: digested each time
            pass
        return digest

    def _clear(self) -> None:
        self._reductions.clear()
        self._passes.clear()
        self._digests.clear()


@contextlib.contextmanager
def reuse_neural_side(max_bytes: int | None = None):
    """Within the block, refits on the same neural arrays reuse their neural side.

    Parameters
    ----------
    max_bytes : int, optional
        At most this many bytes are kept; default :data:`MAX_BYTES` (2 GiB).

    Yields
    ------
    NeuralCache
        Emptied when the block ends.
    """
    cache = NeuralCache(MAX_BYTES if max_bytes is None else max_bytes)
    token = _BLOCK.set(cache)
    try:
        yield cache
    finally:
        _BLOCK.reset(token)
        cache._clear()


@contextlib.contextmanager
def suspended():
    """Within the block, no cache is open in this context (e.g. a fit that must keep
    nothing and read its data again with the same numbers, ``low_memory="strict"``)."""
    token = _BLOCK.set(None)
    try:
        yield
    finally:
        _BLOCK.reset(token)


def _open() -> NeuralCache | None:
    return _BLOCK.get()


def fold_key(n: float, sx: np.ndarray, xx_parts: list) -> bytes | None:
    """The key of a fold's neural training statistics, or None when no block is open.

    ``xx_parts``: the arrays whose difference ``xx_parts[0] - xx_parts[1] - ...`` is the
    training ``X'X``, in the order they are subtracted (one array: ``X'X`` itself).
    """
    cache = _open()
    if cache is None:
        return None
    h = hashlib.blake2b(digest_size=20)
    h.update(np.float64(n).tobytes())
    h.update(len(xx_parts).to_bytes(4, "little"))
    for a in (sx, *xx_parts):
        h.update(cache._digest(a))
    return h.digest()


def eigen_pays() -> bool:
    """Whether a fold should keep the eigendecomposition of its Gram matrix (the open
    block expects at least :data:`EIGEN_REUSES` reuses and still keeps what is new)."""
    cache = _open()
    return cache is not None and not cache.frozen and cache.reuses >= EIGEN_REUSES


def wants(key: bytes | None, nbytes: int) -> bool:
    """Whether :func:`keep` would keep something of ``nbytes`` bytes under ``key`` (a
    block is open, keeps what is new, has room and has nothing under ``key``): ask
    before computing what only the cache needs."""
    cache = _open()
    if cache is None or key is None:
        return False
    with _LOCK:
        return key not in cache._reductions and cache._room(nbytes)


def lookup(key: bytes | None):
    """What is kept under ``key`` (a reduction, or ``(eigenvalues, eigenvectors)``),
    or None."""
    cache = _open()
    if cache is None or key is None:
        return None
    with _LOCK:
        found = cache._reductions.get(key)
        if found is None:
            cache.misses += 1
        else:
            cache.hits += 1
    return found


def keep(key: bytes | None, reduction, nbytes: int) -> None:
    """Keep ``reduction`` (a reduction or an eigendecomposition, of about ``nbytes``
    bytes) under ``key`` when the block has room."""
    cache = _open()
    if cache is None or key is None:
        return
    with _LOCK:
        if key not in cache._reductions and cache._room(nbytes):
            cache._reductions[key] = reduction
            cache.nbytes += int(nbytes)


def _same_plan(a: tuple, b: tuple) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def find_pass(X: np.ndarray, lags: np.ndarray, plan: tuple):
    """The neural chunk statistics kept for the array ``X`` (this object), ``lags`` and an
    equal ``plan`` (a tuple of arrays: kept rows, chunk order and bounds, centre, ...),
    or None."""
    cache = _open()
    if cache is None:
        return None
    with _LOCK:
        entries = list(cache._passes.get((id(X), lags.tobytes()), ()))
        for ref, kept_plan, neural in entries:
            if ref() is X and _same_plan(kept_plan, plan):
                cache.pass_hits += 1
                return neural
    return None


def keep_pass(X: np.ndarray, lags: np.ndarray, plan: tuple, neural: list) -> None:
    """Keep the neural chunk statistics ``neural`` (list of (n, sx, xx)) of a pass over
    ``X`` with ``lags`` and ``plan`` when the block has room. ``X`` is referred to weakly:
    an array read for one fit only (from a file) is not held, and its entry is never
    taken by another array that gets its ``id``."""
    cache = _open()
    if cache is None:
        return
    nbytes = sum(xx.nbytes + sx.nbytes for _, sx, xx in neural)
    with _LOCK:
        if cache._room(nbytes):
            for _, sx, xx in neural:  # shared by the fits that take them: never written
                sx.flags.writeable = xx.flags.writeable = False
            entry = (weakref.ref(X), plan, neural)
            cache._passes.setdefault((id(X), lags.tobytes()), []).append(entry)
            cache.nbytes += nbytes
