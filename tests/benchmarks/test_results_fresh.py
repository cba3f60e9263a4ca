"""Every result file in benchmarks/results/ describes the code at HEAD, or says why not.

See :mod:`benchmarks.results_freshness`: each recorded library file must have its
recorded content now, or the change must be acknowledged (with a reason), or the
result marked superseded. No training: hashes only.
"""

from __future__ import annotations

import json

import pytest

from benchmarks.provenance import git_blob_hash
from benchmarks.results_freshness import load_acknowledgements, moved_path, reachable, stale_results, staleness


def test_every_result_is_fresh_or_acknowledged():
    stale = stale_results()
    assert not stale, "\n".join(f"{item.result}: {'; '.join(item.reasons)}" for item in stale)


def test_acknowledgements_name_real_blobs_and_give_reasons():
    for change in load_acknowledgements()["changes"]:
        assert {"file", "from", "to", "reason"} <= set(change) and change["reason"].strip()
    for name, reason in load_acknowledgements()["superseded"].items():
        assert reason.strip(), name
    for move in load_acknowledgements()["moves"]:
        assert {"from", "to", "reason"} <= set(move) and move["reason"].strip()


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


def test_a_moved_library_file_is_followed_to_its_new_path(tmp_path):
    old, new = tmp_path / "pyro_dgm" / "old.py", tmp_path / "pyro_dgm" / "sub" / "new.py"
    new.parent.mkdir(parents=True)
    new.write_text("x = 1\n")  # the content the result ran, now at another path
    recorded = git_blob_hash(new)
    result = write_result(tmp_path, {"pyro_dgm/old.py": recorded})
    move = {"from": "pyro_dgm/old.py", "to": "pyro_dgm/sub/new.py", "reason": "r"}
    assert not old.exists()
    stale = staleness(result, {"superseded": {}, "changes": [], "moves": []}, repository=tmp_path)
    assert stale is not None and "pyro_dgm/old.py changed" in stale.reasons[0] and "deleted" in stale.reasons[0]
    assert staleness(result, {"superseded": {}, "changes": [], "moves": [move]}, repository=tmp_path) is None

    old.write_text("x = 1\n")  # a new file at the old path (say a shim) is not what the result ran
    assert staleness(result, {"superseded": {}, "changes": [], "moves": [move]}, repository=tmp_path) is None

    new.write_text("x = 2\n")  # moved and edited: the move alone does not cover the edit
    stale = staleness(result, {"superseded": {}, "changes": [], "moves": [move]}, repository=tmp_path)
    assert stale is not None and "pyro_dgm/old.py (now pyro_dgm/sub/new.py) changed" in stale.reasons[0]
    edit = {"file": "pyro_dgm/sub/new.py", "from": recorded, "to": git_blob_hash(new), "reason": "r"}
    assert staleness(result, {"superseded": {}, "changes": [edit], "moves": [move]}, repository=tmp_path) is None


def test_moves_chain_and_a_circle_of_moves_is_an_error():
    moves = [{"from": "a.py", "to": "b.py"}, {"from": "b.py", "to": "c.py"}]
    assert moved_path("a.py", moves) == ["a.py", "b.py", "c.py"] and moved_path("c.py", moves) == ["c.py"]
    with pytest.raises(ValueError, match="circle"):
        moved_path("a.py", [*moves, {"from": "c.py", "to": "a.py"}])
