"""Searching every layer's versions (:func:`ufs_tui.core.search.search_versions`): a secret added in one layer and
deleted through a real mount is not in the merged tree, yet it is found in the layer that still stores it,
with what became of it; so is a file hidden by an opaque dir and one under a deleted dir."""

from __future__ import annotations

import threading

import pytest

from tests.kernel.lab import Lab
from ufs_tui.core.model import status as S
from ufs_tui.core.model.merge import OverlayView
from ufs_tui.core.search import VersionHit, search_merged, search_versions

pytestmark = pytest.mark.usefixtures("root_mount")


def _find(view: OverlayView, query: str) -> list[VersionHit]:
    hits: list[VersionHit] = []
    total = search_versions(view, threading.Lock(), query, lambda: False, hits.extend)
    assert total == len(hits)
    return hits


def test_a_deleted_secret_is_found_in_the_layer_that_stores_it(lab: Lab) -> None:
    base = lab.lowers[1]
    lab.file(f"{base}/app/secret.key", b"hunter2")
    lab.file(f"{base}/app/conf/secret.cfg", b"x")
    lab.file(f"{base}/old/secret.txt", b"y")
    lab.file(f"{lab.lowers[0]}/app/secret.key", b"still here")  # a newer copy in the layer above
    lab.ops("rm app/secret.key; rm -rf app/conf; mkdir app/conf; rm -r old")
    view = OverlayView(lab.stack())
    merged: list[str] = []
    assert search_merged(view, threading.Lock(), "secret", lambda: False, merged.extend) == 0 and merged == []
    hits = {(h.path, h.layer.name): h for h in _find(view, "secret")}
    assert set(hits) == {
        ("/app/secret.key", "lower:0"),
        ("/app/secret.key", "lower:1"),
        ("/app/conf/secret.cfg", "lower:1"),
        ("/old/secret.txt", "lower:1"),
    }
    top = hits[("/app/secret.key", "lower:0")]
    assert (top.fate, top.by and top.by.name) == (S.F_WHITED_OUT, "upper")
    assert top.words() == "lower:0, whited-out by upper"
    assert hits[("/app/secret.key", "lower:1")].fate == S.F_WHITED_OUT  # (the upper's whiteout decides it)
    assert hits[("/app/conf/secret.cfg", "lower:1")].fate == S.F_OPAQUE_HIDDEN  # rm -rf; mkdir: opaque in the upper
    assert hits[("/old/secret.txt", "lower:1")].fate == S.F_PARENT_HIDDEN  # its dir is whited out
    shown = _find(OverlayView(lab.stack()), "*.cfg")
    assert [(h.path, h.fate) for h in shown] == [("/app/conf/secret.cfg", S.F_OPAQUE_HIDDEN)]
