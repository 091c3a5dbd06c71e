"""An OCI layout whose image is an image index of several platforms (``podman manifest push --all``): each
platform is a choice for ``--image``, and without one the error lists them (no silent first manifest)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest

from tests.engines.conftest import Engine
from ufs_tui import cli
from ufs_tui.core.model.errors import StackError
from ufs_tui.core.model.merge import OverlayView
from ufs_tui.core.sources import open_source

LIST = "localhost/ufs-list:1"


@pytest.fixture(scope="module")
def layouts(podman: Engine, engine_tmp: str) -> Iterator[dict[str, str]]:
    """The same two-platform list pushed as an OCI layout dir and as an oci-archive: amd64 is base:1 (one layer),
    arm64/v8 is multi:1 (three)."""
    podman.run("manifest", "create", LIST)
    podman.run("manifest", "add", "--arch", "amd64", LIST, "containers-storage:localhost/base:1")
    podman.run("manifest", "add", "--arch", "arm64", "--variant", "v8", LIST, "containers-storage:localhost/multi:1")
    out = {"dir": f"{engine_tmp}/list-layout", "archive": f"{engine_tmp}/list-archive.tar"}
    podman.run("manifest", "push", "--all", LIST, f"oci:{out['dir']}:list1")
    podman.run("manifest", "push", "--all", LIST, f"oci-archive:{out['archive']}:list1")
    yield out
    podman.run("manifest", "rm", LIST, check=False)


def paths(spec: str, **opts: str) -> set[str]:
    return {p for p, _ in OverlayView(open_source(spec, **opts)).walk()}


def index_of(layout: str) -> dict[str, object]:
    """The image index the layout's index.json points at (podman writes it as a blob)."""
    with open(f"{layout}/index.json") as f:
        top = json.load(f)
    (desc,) = top["manifests"]
    assert desc["mediaType"] == "application/vnd.oci.image.index.v1+json"
    with open(f"{layout}/blobs/sha256/{desc['digest'].split(':')[1]}") as f:
        return json.load(f)  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind", ["dir", "archive"])
def test_platforms_are_choices(oci_archive: str, layouts: dict[str, str], kind: str) -> None:
    layout = layouts[kind]
    platforms = [m["platform"] for m in index_of(layouts["dir"])["manifests"]]  # type: ignore[index]
    assert {(p["architecture"], p.get("variant")) for p in platforms} == {("amd64", None), ("arm64", "v8")}
    with pytest.raises(StackError) as err:
        open_source(layout)
    assert str(err.value) == (
        f"{layout}: the archive holds 2 images; choose one with --image: list1@linux/amd64, list1@linux/arm64/v8"
    )
    multi = paths(oci_archive)  # multi:1 saved on its own
    for want in ("list1@linux/arm64/v8", "linux/arm64/v8", "linux/arm64"):
        stack = open_source(layout, image=want)
        assert len(stack.lowers) == 3 and paths(layout, image=want) == multi, want
    base = open_source(layout, image="linux/amd64")
    assert len(base.lowers) == 1 and "/layer3" not in paths(layout, image="list1@linux/amd64")
    with pytest.raises(StackError, match="'list1' is an image index of 2 platforms; choose one with --image: list1@"):
        open_source(layout, image="list1")
    with pytest.raises(StackError, match="no image 'linux/s390x' in the archive; it holds: list1@linux/amd64, "):
        open_source(layout, image="linux/s390x")


def test_manifest_digest_and_cli(layouts: dict[str, str]) -> None:
    layout = layouts["dir"]
    arm = next(m for m in index_of(layout)["manifests"] if m["platform"]["architecture"] == "arm64")  # type: ignore[index]
    digest = arm["digest"].split(":")[1]
    assert len(open_source(layout, image=digest[:12]).lowers) == 3  # a prefix of the platform's manifest digest
    out = io.StringIO()
    assert cli.main(["tree", layout, "--image", "linux/arm64", "--format", "json"], stdout=out) == 0
    assert "/layer3" in [json.loads(line)["path"] for line in out.getvalue().splitlines()]
