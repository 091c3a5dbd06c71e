"""Layer labels (what the engine and archive readers attach to each layer) come apart again for the UI: the
whole step, the size, every id; and a build step reads as a person writes it (``RUN cmd``)."""

from __future__ import annotations

import pytest

from ufs_tui.core.sources.common import LabelParts, brief_step, layer_label, parse_label

DIFF = "sha256:" + "a" * 64
CHAIN = "sha256:" + "b" * 64
CACHE = "c" * 64


def test_label_round_trip_keeps_the_whole_step_and_full_ids() -> None:
    step = "/bin/sh -c " + " && ".join(f"echo {i} > /f{i}" for i in range(40))  # longer than any screen
    label = layer_label(step, 12_345, [("diff", DIFF), ("chain", CHAIN), ("cache", CACHE), ("none", "")])
    assert parse_label(label) == LabelParts(
        step, "12.3 kB", (("diff", "a" * 64), ("chain", "b" * 64), ("cache", CACHE))
    )


def test_a_step_holding_the_separator_stays_whole() -> None:
    step = "echo 'a · b' · 5 B"
    assert parse_label(layer_label(step, 7, [("diff", DIFF)])).text == step
    assert parse_label(layer_label(step, None, [])).text == "echo 'a · b'"  # (no size: the tail reads as one)


def test_whitespace_is_flattened_and_control_characters_kept_for_the_display_to_escape() -> None:
    parts = parse_label(layer_label("echo\n\tx \x1b[31m", 1, []))
    assert parts.text == "echo x \x1b[31m" and parts.size == "1 B" and parts.ids == ()


@pytest.mark.parametrize(
    ("label", "parts"),
    [
        ("snapshot 12", LabelParts("snapshot 12")),  # containerd
        (
            "init layer (.dockerenv, ...) · cache:abc-init",
            LabelParts("init layer (.dockerenv, ...)", None, (("cache", "abc-init"),)),
        ),
        (
            "container web writable layer · container:1f2e cache:9a",
            LabelParts("container web writable layer", None, (("container", "1f2e"), ("cache", "9a"))),
        ),
        ("(no history) · 0 B", LabelParts("(no history)", "0 B")),
    ],
)
def test_other_labels(label: str, parts: LabelParts) -> None:
    assert parse_label(label) == parts


@pytest.mark.parametrize(
    ("step", "brief"),
    [
        ("/bin/sh -c apk add curl", "RUN apk add curl"),  # classic builder, podman/buildah
        ('/bin/sh -c #(nop)  CMD ["sh"]', 'CMD ["sh"]'),
        ("/bin/sh -c #(nop) ADD file:9f2a in / ", "ADD file:9f2a in / "),
        ("|2 A=1 B=two /bin/sh -c make", "RUN make"),  # build args before the shell
        ("RUN /bin/sh -c make install # buildkit", "RUN make install"),
        ("COPY app /app # buildkit", "COPY app /app"),
        ("Imported from -", "Imported from -"),
    ],
)
def test_brief_step(step: str, brief: str) -> None:
    assert brief_step(step) == brief
