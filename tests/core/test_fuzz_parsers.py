"""Hypothesis fuzzing of the parsers of outside data not fuzzed beside their own tests (bbolt: test_bbolt.py;
engine configs, records, Go encodings and the Docker socket: tests/engines/test_crio_hostroot.py): mountinfo
lines, lowerdir strings, mount options, layer labels, tar headers and image archives' JSON. Each returns, or
raises the documented error (UfsError) with a one-line message; nothing else escapes, nothing hangs.
``pytest tests/core/test_fuzz_parsers.py --hypothesis-show-statistics`` prints the cases tried."""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
from collections.abc import Callable
from typing import TypeVar

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.conftest import time_limit
from ufs_tui.core.model.display import printable
from ufs_tui.core.model.errors import UfsError
from ufs_tui.core.model.stack import parse_lowerdir
from ufs_tui.core.mounting.preflight import option_problems
from ufs_tui.core.sources.archive import open_archive
from ufs_tui.core.sources.common import parse_label
from ufs_tui.core.sources.mountinfo import parse_line

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FIELD = st.text(alphabet=st.sampled_from("ab/\\:,= 0123\n\t\x00\x1b[]-"), max_size=40)
OPTION = st.one_of(
    FIELD,
    st.sampled_from(["lowerdir", "upperdir", "workdir", "lowerdir+", "datadir+", "redirect_dir", "metacopy"]).flatmap(
        lambda k: FIELD.map(lambda v: f"{k}={v}")
    ),
)


T = TypeVar("T")


def parsed(parse: Callable[[], T], limit: float = 10) -> T | None:
    """What ``parse()`` gives in ``limit`` seconds; None when it raises the documented error (UfsError), whose
    message must be one line as the CLI prints it (``ufs-tui: error: MESSAGE``, made printable there: a message
    may quote what the user gave, raw). Anything else escapes."""
    try:
        with time_limit(limit):
            got = parse()
    except UfsError as e:
        event("refused")
        shown = printable(str(e))
        assert shown and "\n" not in shown and "\x1b" not in shown, repr(str(e))
        return None
    event("returned")
    return got


@SETTINGS
@given(st.lists(FIELD, min_size=0, max_size=8), st.lists(OPTION, max_size=6), st.booleans())
def test_mountinfo_lines(head: list[str], options: list[str], overlay: bool) -> None:
    line = " ".join(head) + " - " + ("overlay" if overlay else "x") + " src " + ",".join(options)
    m = parsed(lambda: parse_line(line), limit=5)
    event("parsed" if m is not None else "refused, or not an overlay line")
    if m is not None:
        assert isinstance(m.lowers, tuple) and all(isinstance(p, str) for p in m.lowers)


@SETTINGS
@given(st.text(max_size=80))
def test_lowerdir_strings(spec: str) -> None:
    got = parsed(lambda: parse_lowerdir(spec))
    if got is not None:
        assert all(isinstance(p, str) and isinstance(d, bool) for p, d in got)


@SETTINGS
@given(st.lists(OPTION, max_size=8), st.sampled_from(["kernel", "userns", "fuse"]))
def test_mount_options(options: list[str], backend: str) -> None:
    problems = option_problems(options, backend)
    event(f"{min(len(problems), 3)} problems")
    assert all(p.subject is not None and p.what and p.fix for p in problems)


@SETTINGS
@given(st.text(max_size=200))
def test_layer_labels(label: str) -> None:
    parts = parse_label(label)
    assert isinstance(parts.text, str)


def _archive(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


JSONS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
NAMES = st.sampled_from(["config.json", "l0/layer.tar", "../x", "/abs", "", "blobs/sha256/ab", "manifest.json"])


@SETTINGS
@given(
    st.one_of(
        st.binary(max_size=3000),  # not a tar at all, or a broken one
        JSONS.map(lambda j: _archive({"manifest.json": json.dumps(j).encode()})),
        st.tuples(JSONS, st.lists(NAMES, max_size=3), st.binary(max_size=600)).map(
            lambda t: _archive(
                {
                    "manifest.json": json.dumps([{"Config": "config.json", "Layers": t[1], "RepoTags": t[0]}]).encode(),
                    "config.json": json.dumps(t[0]).encode(),
                    "l0/layer.tar": t[2],
                }
            )
        ),
        st.tuples(JSONS, st.binary(max_size=600)).map(
            lambda t: _archive(
                {
                    "oci-layout": b'{"imageLayoutVersion": "1.0.0"}',
                    "index.json": json.dumps(t[0]).encode(),
                    "blobs/sha256/ab": t[1],
                }
            )
        ),
    )
)
def test_image_archives(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "img.tar")
        with open(path, "wb") as f:
            f.write(data)
        stack = parsed(lambda: open_archive(path))
        if stack is not None:
            assert stack.lowers
