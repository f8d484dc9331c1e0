"""Fuzz-style robustness: random bytes and truncated copies of valid files.

Every reader must fail cleanly with DataFormatError naming the file (or, for plain-text
formats whose truncation still parses, return a consistent shorter result): never hang,
crash the interpreter, or raise another exception type. The readers run in a child
process so a hard crash (segfault in a C library) fails this test instead of killing
pytest; each call also has a 30 s alarm.
"""

import json

from io_builders import run_isolated


def test_readers_fail_cleanly_on_random_and_truncated_files(tmp_path):
    code = (
        "import json, io_builders; "
        f"print(json.dumps(io_builders.fuzz_main({str(tmp_path / 'fuzz')!r})))"
    )
    records = run_isolated(code, timeout=300)
    assert len(records) > 100
    bad = []
    for r in records:
        if r["case"] == "study-validate":
            ok = r["sane"]
        elif r["case"] == "study-load":
            ok = r["outcome"] == "StudyError"
        elif r["outcome"] == "DataFormatError":
            ok = r["named"]
        elif r["outcome"] == "ok":
            ok = r["text"] and r["sane"]
        else:
            ok = False
        if not ok:
            bad.append(r)
    assert not bad, json.dumps(bad, indent=1)
