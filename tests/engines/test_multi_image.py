"""Archives that hold several images (``docker save a b``): --image picks one; without it the error lists them."""

from __future__ import annotations

import io
import json

import pytest

from tests.engines.conftest import Engine
from ufs_tui import cli
from ufs_tui.core.model.errors import StackError
from ufs_tui.core.model.merge import OverlayView
from ufs_tui.core.sources import open_source


@pytest.fixture(scope="module")
def two_images(docker: Engine, engine_tmp: str) -> str:
    path = f"{engine_tmp}/two-images.tar"
    docker.run("save", "-o", path, "base:1", "multi:1")
    return path


def paths(spec: str, **opts: str) -> set[str]:
    return {p for p, _ in OverlayView(open_source(spec, **opts)).walk()}


def test_without_image_the_error_lists_the_choices(two_images: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(StackError, match="holds 2 images; choose one with --image") as err:
        open_source(two_images)
    assert "base:1" in str(err.value) and "multi:1" in str(err.value)
    assert cli.main(["tree", two_images], stdout=io.StringIO()) == 2
    assert "choose one with --image: base:1, multi:1" in capsys.readouterr().err


def test_image_picks_one(docker: Engine, two_images: str, docker_archive: str) -> None:
    multi = paths(two_images, image="multi:1")
    assert multi == paths(docker_archive)  # the same image as saved alone
    assert len(open_source(two_images, image="multi:1").lowers) == 3
    base = open_source(two_images, image="base:1")
    assert len(base.lowers) == 1
    assert "/layer3" in multi and "/layer3" not in paths(two_images, image="base:1")
    # an id prefix (the image's config digest, as docker images shows it) works too
    image_id = docker.run("image", "inspect", "-f", "{{.Id}}", "base:1").strip().split(":", 1)[1]
    assert paths(two_images, image=image_id[:12]) == paths(two_images, image="base:1")


def test_unknown_image_names_the_choices(two_images: str, docker_archive: str) -> None:
    with pytest.raises(StackError, match="no image 'nope:1' in the archive; it holds: base:1, multi:1"):
        open_source(two_images, image="nope:1")
    with pytest.raises(StackError, match="it holds: multi:1"):
        open_source(docker_archive, image="other")


def test_cli_image_option(two_images: str) -> None:
    out = io.StringIO()
    assert cli.main(["tree", two_images, "--image", "multi:1", "--format", "json"], stdout=out) == 0
    rows = [json.loads(line)["path"] for line in out.getvalue().splitlines()]
    assert "/layer3" in rows


def test_oci_ref_name(podman: Engine, oci_archive: str) -> None:
    """podman's OCI archive names its image in the index annotations: that name picks it."""
    stack = open_source(oci_archive)
    with pytest.raises(StackError, match="it holds: ") as err:
        open_source(oci_archive, image="nope")
    shown = str(err.value).rsplit("it holds: ", 1)[1]
    assert paths(oci_archive, image=shown) == {p for p, _ in OverlayView(stack).walk()}
