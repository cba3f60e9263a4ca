"""Every result file in benchmarks/results/ describes the code at HEAD, or says why not.

See :mod:`benchmarks.results_freshness`: each recorded library file must have its
recorded content now, or the change must be acknowledged (with a reason), or the
result marked superseded. No training: hashes only.
"""

from __future__ import annotations

import json

from benchmarks.provenance import git_blob_hash
from benchmarks.results_freshness import load_acknowledgements, reachable, stale_results, staleness


def test_every_result_is_fresh_or_acknowledged():
    stale = stale_results()
    assert not stale, "\n".join(f"{item.result}: {'; '.join(item.reasons)}" for item in stale)


def test_acknowledgements_name_real_blobs_and_give_reasons():
    for change in load_acknowledgements()["changes"]:
        assert {"file", "from", "to", "reason"} <= set(change) and change["reason"].strip()
    for name, reason in load_acknowledgements()["superseded"].items():
        assert reason.strip(), name


def write_result(folder, library_files):
    path = folder / "result.json"
    path.write_text(json.dumps({"provenance": {"commit": "0" * 40, "library_files": library_files}}))
    return path


def test_a_changed_library_file_makes_a_result_stale(tmp_path):
    module = tmp_path / "pyro_dgm" / "module.py"
    module.parent.mkdir()
    module.write_text("x = 1\n")
    recorded = git_blob_hash(module)
    result = write_result(tmp_path, {"pyro_dgm/module.py": recorded})
    nothing = {"superseded": {}, "changes": []}
    assert staleness(result, nothing, repository=tmp_path) is None

    module.write_text("x = 2\n")  # the library changed after the run
    changed = git_blob_hash(module)
    stale = staleness(result, nothing, repository=tmp_path)
    assert stale is not None and "pyro_dgm/module.py changed" in stale.reasons[0]

    middle = "f" * 40  # acknowledged in two steps: recorded -> middle -> changed
    chain = [{"file": "pyro_dgm/module.py", "from": recorded, "to": middle, "reason": "r"},
             {"file": "pyro_dgm/module.py", "from": middle, "to": changed, "reason": "r"}]
    assert staleness(result, {"superseded": {}, "changes": chain}, repository=tmp_path) is None
    assert not reachable("pyro_dgm/module.py", recorded, changed, chain[1:])
    assert staleness(result, {"superseded": {"result.json": "rerun pending"}, "changes": []}, repository=tmp_path) is None


def test_a_result_without_library_files_is_stale(tmp_path):
    result = tmp_path / "legacy.json"
    result.write_text(json.dumps({"rows": []}))
    stale = staleness(result, {"superseded": {}, "changes": []}, repository=tmp_path)
    assert stale is not None and "library_files" in stale.reasons[0]
