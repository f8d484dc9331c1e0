"""backend="dask" on a real LocalCluster of 2 worker processes."""

import tracemalloc

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from model_checks import BACKEND_KW as KW  # noqa: E402
from model_checks import assert_close_models, assert_same_model, write_sessions  # noqa: E402
from sharedrep import ShaReD, simulate  # noqa: E402
from sharedrep.core.backends import get_backend  # noqa: E402
from sharedrep.core.backends.dask import ENV_VAR, shutdown, use_cluster  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cl:
        yield cl
        shutdown()  # clients this module's tests made sharedrep open by address


@pytest.fixture(scope="module")
def client(cluster):
    with distributed.Client(cluster, set_as_default=False) as c:
        with use_cluster(c):
            yield c


@pytest.fixture(scope="module")
def data():
    return simulate(n_subjects=3, n_samples=800, n_units=(8, 14), n_behavior=6, seed=3, lag=1)


@pytest.fixture(scope="module")
def reference(data):
    return ShaReD(**KW).fit(data.neural, data.behavior, groups=data.groups)


def test_in_memory_identical(client, data, reference):
    with distributed.get_task_stream(client) as ts:
        m = ShaReD(backend="dask", **KW).fit(data.neural, data.behavior, groups=data.groups)
    assert_same_model(reference, m)
    # one statistics task per subject ran on the cluster's workers
    keys = [str(t["key"]) for t in ts.data]
    assert sum("sharedrep-statistics" in k for k in keys) == len(data.neural), keys


def test_float32_in_memory_arrays_are_converted_on_the_workers(client, data):
    neural = [x.astype(np.float32) for x in data.neural]
    wide = [x.astype(np.float64) for x in neural]
    ref = ShaReD(**KW).fit(wide, data.behavior, groups=data.groups)
    m = ShaReD(backend="dask", **KW).fit(neural, data.behavior, groups=data.groups)
    assert_same_model(ref, m)


def test_statistics_stay_on_the_workers(client, data, reference):
    # the CV and the final fit run in per-subject phases on the workers; without private
    # components no chunk statistics are fetched to the driver
    with distributed.get_task_stream(client) as ts:
        m = ShaReD(backend="dask", private=False, **KW).fit(
            data.neural, data.behavior, groups=data.groups
        )
    names = [str(t["key"]).split("-", 1)[0] for t in ts.data]  # function-uuid
    S, n_folds = len(data.neural), KW["cv"]
    assert names.count("solve_fold") == S * n_folds, names
    assert names.count("whole_problem") == S, names
    assert "chunk" not in names, names
    np.testing.assert_array_equal(m.shared_axes_, reference.shared_axes_)
    for ea, eb in zip(reference.encoders_, m.encoders_, strict=True):
        np.testing.assert_array_equal(ea, eb)


def test_files_identical(client, data, reference, tmp_path):
    neural, behavior, groups = write_sessions(data, tmp_path)
    m = ShaReD(backend="dask", **KW).fit(neural, behavior, groups=groups)
    assert_same_model(reference, m)


def test_dask_arrays_identical(client, data, reference):
    da = pytest.importorskip("dask.array")
    neural = [da.from_array(x, chunks=(250, -1)) for x in data.neural]
    m = ShaReD(backend="dask", **KW).fit(neural, data.behavior, groups=data.groups)
    assert_same_model(reference, m)


def test_kernel_form_on_the_workers(client, data, reference):
    # the kernel form is computed from rows the workers send back; same model
    m = ShaReD(backend="dask", form="dual", **KW).fit(
        data.neural, data.behavior, groups=data.groups
    )
    assert_same_model(reference, m, tol=1e-8)


def test_band_route_on_the_workers_equals_numpy(client, data, reference):
    """Wide folds (the band reduction, q >= BAND_MIN_Q) solved on the workers give the
    model of the in-memory numpy fit on the tridiagonal route to 1e-8."""
    from sharedrep.core import _lapack

    def band_from(q_min):  # on a worker (defined here: sent by value)
        from sharedrep.core import _lapack

        if not hasattr(_lapack, "_test_band_reduce"):
            _lapack._test_band_reduce = _lapack.band_reduce
        _lapack.BAND_MIN_Q, _lapack._test_calls = q_min, []

        def counted(*args, **kwargs):
            _lapack._test_calls.append(1)  # atomic, whatever the worker's threads
            return _lapack._test_band_reduce(*args, **kwargs)

        _lapack.band_reduce = counted
        return _lapack._sy2sb_pointer() is not None

    def calls_and_restore(q_min):
        from sharedrep.core import _lapack

        calls, _lapack.BAND_MIN_Q = len(_lapack._test_calls), q_min
        _lapack.band_reduce = _lapack._test_band_reduce
        return calls

    default = _lapack.BAND_MIN_Q
    available = client.run(band_from, 3)
    try:
        if not all(available.values()):
            pytest.skip("LAPACK dsytrd_sy2sb is not available to the workers")
        m = ShaReD(backend="dask", **KW).fit(data.neural, data.behavior, groups=data.groups)
    finally:
        calls = client.run(calls_and_restore, default)
    n_folds = KW["cv"]
    assert sum(calls.values()) >= len(data.neural) * n_folds, calls  # every fold: band route
    assert_close_models(reference, m, rtol=1e-8)


def test_float32_and_no_cv(client, data):
    kw = dict(n_shared=2, alpha=0.5, cv=None, dtype="float32")
    a = ShaReD(**kw).fit(data.neural, data.behavior)
    b = ShaReD(backend="dask", **kw).fit(data.neural, data.behavior)
    np.testing.assert_allclose(a.shared_axes_, b.shared_axes_, atol=1e-10)


def test_worker_errors_reach_the_driver(client, data, tmp_path):
    bad = data.neural[1].copy()
    bad[5, 0] = np.inf
    np.save(tmp_path / "bad.npy", bad)
    neural = [data.neural[0], tmp_path / "bad.npy"]
    with pytest.raises(ValueError, match="subject 1: neural contains NaN or inf"):
        ShaReD(backend="dask", n_shared=1, alpha=1.0, cv=None).fit(neural, data.behavior[:2])
    with pytest.raises(ValueError, match="subject 0: only 3 usable samples"):
        ShaReD(backend="dask", lags=5, n_shared=1, alpha=1.0, cv=2).fit(
            [data.neural[0][:8]], [data.behavior[0][:8]]
        )


def test_cluster_resolution(cluster, client, monkeypatch):
    addr = cluster.scheduler_address
    assert get_backend("dask", client=client).client() is client
    assert get_backend("dask").client() is client  # set by use_cluster in the fixture
    with use_cluster(addr):
        c = get_backend("dask").client()
        assert c.scheduler.address == addr
    assert c.status in ("closed", "closing")  # closed with the block, not left to reconnect
    with use_cluster(cluster):  # a cluster object: its scheduler address
        assert get_backend("dask").client().scheduler.address == addr
    assert get_backend("dask", address=addr).client().scheduler.address == addr
    with use_cluster(None):
        monkeypatch.setenv(ENV_VAR, addr)
        assert get_backend("dask").client().scheduler.address == addr
        monkeypatch.delenv(ENV_VAR)
        with distributed.Client(cluster) as default:  # the current default client
            assert get_backend("dask").client() is default
    with pytest.raises(TypeError, match="scheduler address"):
        use_cluster(3)


def test_driver_memory_bounded(client, tmp_path):
    """Fitting from .npy files: the driver allocates far less than the data size.

    6 subjects x 20,000 samples x (100 units + 4 behaviour features) = 100 MB of float64
    on disk; the driver holds only the chunk statistics (105 x 105 per chunk), the
    kept-row indices and the model (about 4.4 MB; measured peak about 9 MB).
    """
    S, T, N = 6, 20_000, 100
    d = simulate(n_subjects=S, n_samples=T, n_units=N, n_behavior=4, seed=1, trial_length=500)
    paths_x, paths_y = [], []
    for s in range(S):
        np.save(tmp_path / f"x{s}.npy", d.neural[s])
        np.save(tmp_path / f"y{s}.npy", d.behavior[s])
        paths_x.append(tmp_path / f"x{s}.npy")
        paths_y.append(tmp_path / f"y{s}.npy")
    data_bytes = S * T * (N + 4) * 8
    del d
    model = ShaReD(backend="dask", n_shared=2, cv=5, alphas=np.logspace(-2, 2, 5))
    model.fit(paths_x[:1], paths_y[:1])  # warm-up: imports, connections
    tracemalloc.start()
    try:
        model.fit(paths_x, paths_y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert model.n_units_ == [N] * S
    # one subject's activity alone is 16 MB; the driver must stay well below that
    assert peak < data_bytes / 6, (peak, data_bytes)
    assert peak < T * N * 8, (peak, T * N * 8)


def test_refits_with_n_jobs_run_on_the_cluster_one_by_one(client, data):
    from sharedrep import permutation_test

    m = ShaReD(n_shared=1, cv=3, alphas=[0.1, 1.0], backend="dask", private=False)
    kw = dict(n_perm=3, random_state=0, progress=False)
    one = permutation_test(m, data.neural, data.behavior, data.groups, n_jobs=1, **kw)
    with pytest.warns(UserWarning, match="n_jobs=2 ignored: with backend='dask'"):
        two = permutation_test(m, data.neural, data.behavior, data.groups, n_jobs=2, **kw)
    np.testing.assert_array_equal(one.null, two.null)
