"""The GIL-free tridiagonal reduction and the dense top eigenpairs built on it."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import scipy.linalg as sla

from sharedrep.core import _lapack, solver


def _spd(q, seed=0, rank=None):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rank or 2 * q, q))
    return X.T @ X


def test_pointer_is_available():
    # the fast path must be the one in use with the SciPy this project installs
    assert _lapack._sytrd_pointer() is not None


@pytest.mark.parametrize("q", [2, 3, 17, 130])
def test_sytrd_equals_scipy_wrapper(q):
    A = _spd(q, seed=q)
    A_before = A.copy()
    got = _lapack.sytrd(A)
    ref = _lapack.sytrd(A, release_gil=False)  # SciPy's f2py wrapper
    assert got[-1] == ref[-1] == 0
    np.testing.assert_array_equal(np.tril(got[0], -1), np.tril(ref[0], -1))
    for a, b in zip(got[1:4], ref[1:4], strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(A, A_before)  # input untouched


def test_sytrd_reconstructs_matrix():
    q = 40
    A = _spd(q, seed=3)
    c, d, e, tau, info = _lapack.sytrd(A)
    assert info == 0
    T = np.diag(d) + np.diag(e, 1) + np.diag(e, -1)
    Q = np.eye(q, order="F")
    Q[1:], _, _ = sla.lapack.dormqr("L", "N", c[1:, :-1], tau, Q[1:], lwork=64 * q)
    np.testing.assert_allclose(Q @ T @ Q.T, A, rtol=0, atol=1e-12 * np.abs(A).max())
    np.testing.assert_allclose(Q.T @ Q, np.eye(q), atol=1e-13)


def test_sytrd_in_threads_is_deterministic():
    mats = [_spd(60, seed=s) for s in range(8)]
    serial = [_lapack.sytrd(A) for A in mats]
    with ThreadPoolExecutor(2) as pool:
        threaded = list(pool.map(_lapack.sytrd, mats))
    for a, b in zip(serial, threaded, strict=True):
        for x, y in zip(a[:4], b[:4], strict=True):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("q,m,rank", [(3, 1, None), (50, 10, None), (120, 10, 6), (300, 10, None)])
def test_top_eigh_matches_eigh(q, m, rank):
    A = _spd(q, seed=q, rank=rank)  # rank-deficient: repeated zero eigenvalues
    lam, U = solver.top_eigh(A, m)
    ref = sla.eigvalsh(A)[::-1][:m]
    np.testing.assert_allclose(lam, np.clip(ref, 0, None), atol=1e-10 * ref[0])
    assert np.all(np.diff(lam) <= 0)
    np.testing.assert_allclose(U.T @ U, np.eye(m), atol=1e-10)
    # each vector is an eigenvector: A u = lam u
    np.testing.assert_allclose(A @ U, U * lam, atol=1e-9 * ref[0])


@pytest.mark.parametrize("q", [60, 500])  # dense syevr, then Lanczos on an operator
def test_top_eigh_of_a_low_rank_difference(q):
    """``minus=low_rank_quotient(G, C)`` gives the eigenpairs of ``A - G C^+ G'`` formed
    densely with numpy's pseudo-inverse, including a singular ``C`` (dropped direction)."""
    rng = np.random.default_rng(q)
    A = _spd(q, seed=q)
    G = rng.standard_normal((q, 3))
    Z = rng.standard_normal((40, 3))
    Z[:, 2] = Z[:, 1]  # C singular: its null direction must not enter C^+
    C = Z.T @ Z
    dense = A - G @ np.linalg.pinv(C, hermitian=True) @ G.T
    L, R = solver.low_rank_quotient(G, C)
    assert L.shape == R.shape == (q, 2)
    np.testing.assert_allclose(L @ R.T, G @ np.linalg.pinv(C, hermitian=True) @ G.T, atol=1e-9)
    before = A.copy()
    lam, U = solver.top_eigh(A, 10, minus=(L, R))
    np.testing.assert_array_equal(A, before)  # A itself is not modified
    ref = sla.eigvalsh(0.5 * (dense + dense.T))[::-1][:10]
    np.testing.assert_allclose(lam, np.clip(ref, 0, None), rtol=1e-10, atol=1e-10 * ref[0])
    np.testing.assert_allclose(dense @ U, U * lam, atol=1e-8 * ref[0])


@pytest.mark.parametrize("q,m", [(1, 1), (5, 5), (40, 3), (250, 10)])
def test_syevr_top_equals_scipy_eigh(q, m):
    A = _spd(q, seed=q + m)  # distinct eigenvalues: the eigenvectors are unique up to sign
    before = A.copy()
    w, v = _lapack.syevr_top(A, m)
    w_ref, v_ref = sla.eigh(A, subset_by_index=[q - m, q - 1], driver="evr")
    np.testing.assert_allclose(w, w_ref, rtol=1e-12, atol=1e-12 * abs(w_ref).max())
    np.testing.assert_allclose(np.abs(v.T @ v_ref), np.eye(m), atol=1e-8)  # same vectors
    np.testing.assert_allclose(A @ v, v * w, atol=1e-10 * abs(w_ref).max())
    np.testing.assert_array_equal(A, before)
    w2, v2 = _lapack.syevr_top(A, m, release_gil=False)  # SciPy's wrapper
    np.testing.assert_allclose(w2, w, rtol=1e-12, atol=1e-12 * abs(w_ref).max())
    with pytest.raises(ValueError, match="m must be in"):
        _lapack.syevr_top(A, q + 1)


@pytest.mark.parametrize("q", [3, 40, 130])
def test_tridiagonalize_in_place_equals_a_copy_and_rebuilds_the_matrix(q):
    A = _spd(q, seed=q + 1)
    ref = _lapack.tridiagonalize(A)  # copies: A is kept
    np.testing.assert_array_equal(A, _spd(q, seed=q + 1))
    own = np.asfortranarray(A)
    got = _lapack.tridiagonalize(own, overwrite=True)
    assert got.c is own  # reduced in the array's own memory
    np.testing.assert_array_equal(got.d, ref.d)
    np.testing.assert_array_equal(got.e, ref.e)
    # Q T Q' rebuilds A, and Q is orthogonal
    T = np.diag(ref.d) + np.diag(ref.e, 1) + np.diag(ref.e, -1)
    Q = ref.apply_q(np.eye(q))
    np.testing.assert_allclose(Q @ T @ Q.T, A, atol=1e-10 * np.abs(A).max())
    np.testing.assert_allclose(Q.T @ Q, np.eye(q), atol=1e-12)
    np.testing.assert_allclose(ref.apply_q(Q, transpose=True), np.eye(q), atol=1e-12)


def test_a_c_ordered_matrix_is_copied_not_destroyed():
    A = _spd(20, seed=3)
    before = A.copy()
    _lapack.tridiagonalize(A, overwrite=True)  # C order: LAPACK needs Fortran, so a copy
    np.testing.assert_array_equal(A, before)


def test_ormqr_pointer_equals_scipy_ormqr():
    A = _spd(50, seed=4)
    x = np.random.default_rng(5).standard_normal((50, 7))
    for red, offset in ((_lapack.tridiagonalize(A), 1), (_lapack.band_reduce(A, 4), 4)):
        for transpose in (False, True):
            got = red.apply_q(x, transpose=transpose)
            ref = _lapack._ormqr_scipy(
                red.c, red.tau, offset, np.array(x, order="F"), "T" if transpose else "N"
            )
            np.testing.assert_allclose(got, ref, rtol=0, atol=1e-13)


def test_band_reduction_is_available():
    # the fast path for wide matrices must be the one in use with the SciPy this project
    # installs (its OpenBLAS exports dsytrd_sy2sb)
    assert _lapack._sy2sb_pointer() is not None


@pytest.mark.parametrize("q,kd", [(2, 1), (5, 1), (40, 3), (130, 32), (300, 32)])
def test_band_reduction_rebuilds_the_matrix(q, kd):
    A = _spd(q, seed=q + kd)
    before = A.copy()
    red = _lapack.band_reduce(A, kd)
    assert red.info == 0 and red.kd == kd
    np.testing.assert_array_equal(A, before)  # copied, not destroyed
    B = red.band_matrix()
    assert np.all(np.triu(B, kd + 1) == 0)
    Q = red.apply_q(np.eye(q))
    np.testing.assert_allclose(Q @ B @ Q.T, A, atol=1e-12 * np.abs(A).max())
    np.testing.assert_allclose(Q.T @ Q, np.eye(q), atol=1e-13)
    np.testing.assert_allclose(red.apply_q(Q, transpose=True), np.eye(q), atol=1e-13)
    own = np.asfortranarray(A)
    assert _lapack.band_reduce(own, kd, overwrite=True).c is own  # in its own memory


@pytest.mark.parametrize("shift", [1e-3, 10.0, -1e6])
def test_shifted_solves_equal_dense_solves(shift):
    # shift < 0 makes the shifted matrix indefinite: the banded and tridiagonal LU
    # fallbacks are used instead of Cholesky
    q = 90
    A = _spd(q, seed=9)
    b = np.random.default_rng(10).standard_normal((q, 4))
    ref = np.linalg.solve(A + shift * np.eye(q), b)
    for red in (_lapack.tridiagonalize(A), _lapack.band_reduce(A, 8)):
        got = red.apply_q(red.solve(shift, red.apply_q(b, transpose=True)))
        np.testing.assert_allclose(got, ref, rtol=1e-8, atol=1e-10 * np.abs(ref).max())


def test_band_reduction_errors_and_fallbacks(monkeypatch):
    A = _spd(30, seed=11)
    with pytest.raises(ValueError, match="kd must be in"):
        _lapack.band_reduce(A, 30)
    monkeypatch.setattr(_lapack, "BAND_MIN_Q", 20)
    assert isinstance(_lapack.reduce_symmetric(A), _lapack.Banded)
    assert isinstance(_lapack.reduce_symmetric(A[:10, :10]), _lapack.Tridiagonal)
    monkeypatch.setattr(_lapack, "_sy2sb_pointer", lambda: None)  # a LAPACK without it
    assert _lapack.band_reduce(A) is None
    assert isinstance(_lapack.reduce_symmetric(A), _lapack.Tridiagonal)


def test_band_reduction_in_threads_is_deterministic():
    mats = [_spd(80, seed=s) for s in range(6)]
    serial = [_lapack.band_reduce(A, 8) for A in mats]
    with ThreadPoolExecutor(2) as pool:
        threaded = list(pool.map(lambda A: _lapack.band_reduce(A, 8), mats))
    for a, b in zip(serial, threaded, strict=True):
        np.testing.assert_array_equal(a.ab, b.ab)
        np.testing.assert_array_equal(a.c, b.c)
