"""The dirs a mount will refuse to look up because it does not follow their redirect (redirect_dir=nofollow or
userxattr: EPERM) are told by a code, never by the words of a message.

A redirect's value is a path, and it can say anything: ``/not followed//x`` is an invalid redirect (an empty
component), which the kernel refuses with EINVAL whatever the options, before it asks whether to follow it. The
model's message for it quotes the value, so matching "not followed" in the message took it for a redirect the
mount does not follow. The kernel is asked too.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator

import pytest

from tests.mount.helpers import scratch
from tests.overlay import mounted
from ufs_tui.core.model.stack import Stack
from ufs_tui.core.mounting.preflight import REDIRECT_REFUSED, mount_warnings, refused_redirects

NOFOLLOW = ("redirect_dir=nofollow",)


@pytest.fixture
def d() -> Iterator[str]:
    """An upper over one lower: ``/manual`` renamed from the lower's ``/docs`` (a redirect the kernel reads and,
    with nofollow, refuses: EPERM), and ``/odd``, whose redirect's value is invalid and names "not followed"."""
    files = {"l0/docs/x": "x\n", "l0/other/": None, "u/manual/": None, "u/odd/": None, "w/": None, "m/": None}
    with scratch(files) as d:
        os.setxattr(f"{d}/u/manual", "trusted.overlay.redirect", b"docs")
        os.setxattr(f"{d}/u/odd", "trusted.overlay.redirect", b"/not followed//x")
        yield d


def _stack(d: str) -> Stack:
    return Stack.build([f"{d}/l0"], f"{d}/u", f"{d}/w")


def test_the_kernel_refuses_one_redirect_and_finds_the_other_invalid(root_mount: None, d: str) -> None:
    with mounted([f"{d}/l0"], f"{d}/u", f"{d}/w", f"{d}/m", ",".join(NOFOLLOW)):
        for name, err in (("manual", errno.EPERM), ("odd", errno.EINVAL)):
            with pytest.raises(OSError) as e:
                os.lstat(f"{d}/m/{name}")
            assert e.value.errno == err, name


def test_a_redirect_whose_value_says_not_followed_is_not_taken_for_a_refused_one(root_mount: None, d: str) -> None:
    assert refused_redirects(_stack(d), NOFOLLOW) == ["/manual"]


def test_the_warning_names_only_the_refused_redirect_and_carries_its_code(root_mount: None, d: str) -> None:
    [warning] = mount_warnings(_stack(d), NOFOLLOW)
    assert warning.kind == REDIRECT_REFUSED
    assert "1 renamed dir(s)" in warning.what and "/manual" in warning.what and "/odd" not in warning.what


def test_followed_redirects_are_never_refused(root_mount: None, d: str) -> None:
    assert refused_redirects(_stack(d), ("redirect_dir=on",)) == []
    assert mount_warnings(_stack(d), ("redirect_dir=on",)) == []
