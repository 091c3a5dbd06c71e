"""Naming a Docker container (``docker:NAME|ID``) from its records: Docker's order (a whole id, a name, a
unique id prefix), found from the record's bytes first, and the same answer when a record is laid out
otherwise than Docker writes it (parsed then)."""

from __future__ import annotations

import json
import os

import pytest

from ufs_tui.core.model.errors import StackError
from ufs_tui.core.sources.docker import containers, resolve_container


def record(root: str, cid: str, name: str, spaced: bool = False) -> None:
    os.makedirs(f"{root}/containers/{cid}", exist_ok=True)
    cfg = {"ID": cid, "Name": f"/{name}", "Image": "sha256:" + "0" * 64, "Driver": "overlay2", "State": {}}
    with open(f"{root}/containers/{cid}/config.v2.json", "w") as f:
        f.write(json.dumps(cfg, indent=1) if spaced else json.dumps(cfg, separators=(",", ":")))


def test_names_ids_and_prefixes(tmp_path: os.PathLike[str]) -> None:
    root = os.fspath(tmp_path)
    a, b, c = "ab" + "1" * 62, "ab" + "2" * 62, "cd" + "3" * 62
    record(root, a, "web")
    record(root, b, "web2")
    record(root, c, a[:12], spaced=True)  # a name that looks like another's id prefix, laid out with spaces
    assert resolve_container(root, "web").id == a
    assert resolve_container(root, "/web2").id == b
    assert resolve_container(root, b).id == b  # a whole id
    assert resolve_container(root, a[:12]).id == c  # a name wins over an id prefix, as in Docker
    assert resolve_container(root, "cd3").id == c
    with pytest.raises(StackError, match="ab"):
        resolve_container(root, "ab")  # a prefix of two ids
    with pytest.raises(StackError, match="no such container"):
        resolve_container(root, "nope")
    assert sorted(x.name for x in containers(root)) == sorted(["web", "web2", a[:12]])
