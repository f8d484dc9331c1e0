"""The dask backend's per-subject phases: same numbers as the in-memory fit, and a driver
whose memory does not grow with the subjects' ``q x q`` statistics.

The phases are first run without a cluster (an in-process stand-in for the
``distributed.Client``: every task runs when submitted), then on a real ``LocalCluster``
with the driver in a process of its own, whose peak memory is measured.
"""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from model_checks import BACKEND_KW as KW  # noqa: E402
from sharedrep import ShaReD, simulate  # noqa: E402
from sharedrep.core import data_pass, solver  # noqa: E402
from sharedrep.core.backends import _phases  # noqa: E402
from sharedrep.core.backends.dask import DaskBackend, RemoteStats  # noqa: E402


class _Done:
    """A finished future of :class:`_InlineClient`."""

    def __init__(self, value, key):
        self.value, self.key, self.status = value, key, "finished"

    def result(self):
        return self.value


class _InlineClient:
    """Runs every submitted task at once in this process; counts what reaches the driver."""

    def __init__(self):
        self.n_tasks = 0
        self.gathered = []  # (function name, result) of what the driver gathered

    def _value(self, x):
        return x.value if isinstance(x, _Done) else x

    def submit(self, func, *args, pure=True, key=None, **kwargs):
        self.n_tasks += 1
        value = func(*[self._value(a) for a in args], **kwargs)
        return _Done(value, key or f"{func.__name__}-{self.n_tasks}")

    def scatter(self, values, hash=True):
        return [_Done(v, f"scattered-{i}") for i, v in enumerate(values)]

    def gather(self, futures):
        out = [f.result() for f in futures]
        self.gathered.extend(zip([f.key for f in futures], out, strict=True))
        return out


@pytest.fixture(scope="module")
def data():
    return simulate(n_subjects=3, n_samples=800, n_units=(8, 14), n_behavior=6, seed=3, lag=1)


def _equal_models(a, b):
    """Bit for bit: selection, axes, encoders, CV tables, private components."""
    assert (a.alpha_, a.n_shared_, a.shrinkage_) == (b.alpha_, b.n_shared_, b.shrinkage_)
    np.testing.assert_array_equal(a.shared_axes_, b.shared_axes_)
    np.testing.assert_array_equal(a.eigenvalues_, b.eigenvalues_)
    for ea, eb in zip(a.encoders_, b.encoders_, strict=True):
        np.testing.assert_array_equal(ea, eb)
    for key in ("fold_scores", "r2_subject_dim", "shrinkage_scores"):
        np.testing.assert_array_equal(a.cv_results_[key], b.cv_results_[key])
    assert a.diagnostics_ == b.diagnostics_
    for pa, pb in zip(a.private_ or [], b.private_ or [], strict=True):
        assert pa.behavior_rank == pb.behavior_rank
        np.testing.assert_array_equal(pa.behavior_cv_score, pb.behavior_cv_score)
        np.testing.assert_array_equal(pa.behavior_axes, pb.behavior_axes)
        np.testing.assert_array_equal(pa.neural_components, pb.neural_components)


@pytest.mark.parametrize(
    "options",
    [dict(), dict(form="dual"), dict(shrinkage=0.3), dict(behavior_metric="variance")],
    ids=["primal-auto-shrinkage", "kernel-form", "fixed-shrinkage", "variance-metric"],
)
def test_phases_give_the_in_memory_model_bit_for_bit(data, options, monkeypatch):
    client = _InlineClient()
    monkeypatch.setattr(DaskBackend, "client", lambda self: client)
    a = ShaReD(**KW, **options).fit(data.neural, data.behavior, groups=data.groups)
    b = ShaReD(backend="dask", **KW, **options).fit(data.neural, data.behavior, groups=data.groups)
    _equal_models(a, b)
    assert client.n_tasks > 0


def test_only_small_results_reach_the_driver(data, monkeypatch):
    """Without private components nothing ``q x q`` is gathered: at most ``q x p`` arrays
    (standardisation, encoders) and ``n_alphas x p x p`` moments."""
    client = _InlineClient()
    monkeypatch.setattr(DaskBackend, "client", lambda self: client)
    m = ShaReD(backend="dask", private=False, **KW)
    m.fit(data.neural, data.behavior, groups=data.groups)
    p, n_alpha = data.behavior[0].shape[1], len(KW["alphas"])
    q_max = max(m.encoders_[s].shape[0] for s in range(len(data.neural)))
    limit = max(q_max * p, n_alpha * p * p)  # numbers in one gathered array

    def arrays(x):
        if isinstance(x, np.ndarray):
            yield x
        elif isinstance(x, list | tuple):
            for item in x:
                yield from arrays(item)
        elif hasattr(x, "__dict__"):
            yield from arrays(list(vars(x).values()))

    sizes = [a.size for _, result in client.gathered for a in arrays(result)]
    assert sizes and max(sizes) <= limit, (max(sizes), limit)
    assert q_max * q_max > limit  # a q x q matrix would have been seen


def test_remote_stats_read_like_chunk_statistics(data):
    """What the estimator reads of a subject's statistics on the driver: behaviour parts
    here, the neural parts fetched on use, equal to the worker's."""
    client = _InlineClient()
    sd = data_pass.subject_statistics(
        data.neural[0], data.behavior[0], data.groups[0], np.arange(3), 4, random_state=0
    )
    fut = client.submit(lambda x: x, sd)
    remote = RemoteStats(client, fut, _phases.summary(sd))
    assert len(remote) == len(sd.stats) and remote.form == "primal"
    assert getattr(remote, "mats", None) is None  # not the torch backend's device stats
    before = client.n_tasks
    for st, rc in zip(sd.stats, remote, strict=True):
        assert rc.n == st.n
        np.testing.assert_array_equal(rc.yy, st.yy)
    assert client.n_tasks == before  # behaviour parts: nothing fetched
    whole = solver.total(remote)
    np.testing.assert_array_equal(whole.xx, solver.total(sd.stats).xx)
    T = np.eye(sd.stats[0].yy.shape[0])[:, :2]
    np.testing.assert_array_equal(remote[-1].transform_behavior(T).xy, sd.stats[-1].xy[:, :2])
    assert client.n_tasks > before
    with pytest.raises(IndexError):
        remote[len(sd.stats)]


_DRIVER = textwrap.dedent(
    """
    import json, sys, tracemalloc
    import numpy as np
    from sharedrep import ShaReD
    from sharedrep.core.backends.dask import use_cluster

    address, folder, n_subjects = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    xs = [f"{folder}/x{s}.npy" for s in range(max(n_subjects))]
    ys = [f"{folder}/y{s}.npy" for s in range(max(n_subjects))]
    peaks = {}
    with use_cluster(address):
        model = ShaReD(backend="dask", n_shared=2, lags=3, cv=3, private=False,
                       alphas=np.logspace(-2, 2, 5))
        model.fit(xs[:2], ys[:2])  # warm-up: imports, connections
        for S in n_subjects:
            tracemalloc.start()
            model.fit(xs[:S], ys[:S])
            peaks[S] = max(peaks.get(S, 0), tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
    print(json.dumps({"peaks": peaks, "q": int(model.encoders_[0].shape[0])}))
    """
)


def test_driver_memory_does_not_grow_with_subjects(tmp_path):
    """Driver peak (its own process, tracemalloc) at S = 4 and 8 subjects of q = 300 columns.

    Gathering the statistics, as the backend once did, adds a subject's chunk statistics
    (3 chunks of 305 x 305 float64: 2.2 MB) to the driver per subject; here a subject adds
    only its summary, its encoder and standardisation (``q (p + k + 4)`` numbers) and the
    bookkeeping of its tasks. The scheduler runs in the test process, not the driver's.
    """
    S, T, N, p, k, n_folds = 8, 1500, 75, 4, 2, 3
    d = simulate(n_subjects=S, n_samples=T, n_units=N, n_behavior=p, seed=1, trial_length=200)
    for s in range(S):
        np.save(tmp_path / f"x{s}.npy", d.neural[s])
        np.save(tmp_path / f"y{s}.npy", d.behavior[s])
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        run = subprocess.run(
            [sys.executable, "-c", _DRIVER, cluster.scheduler_address, str(tmp_path), "[4, 8]"],
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    peak4, peak8, q = result["peaks"]["4"], result["peaks"]["8"], result["q"]
    assert q == 4 * N
    subject_stats = n_folds * (q + p + 1) ** 2 * 8  # what gathering adds per subject
    # per subject: summary, encoder and standardisation; about 6 tasks per fold
    per_subject = 8 * q * (p + k + 4) + n_folds * 48 * 1024
    bound = {S: 2**20 + S * per_subject for S in (4, 8)}
    print(f"driver peaks: {peak4 / 1e6:.2f} MB (S=4), {peak8 / 1e6:.2f} MB (S=8)")
    assert peak8 < 1.3 * peak4 + 0.1 * subject_stats, (peak4, peak8, subject_stats)
    assert peak4 < bound[4] and peak8 < bound[8], (peak4, peak8, bound)
    # far below what gathering holds at S = 8 (8 subject_stats, 18 MB here)
    assert bound[8] < 8 * subject_stats / 5 and bound[8] < 8 * q * q * 8 / 2
