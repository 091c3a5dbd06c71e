"""The harness of the oracle tests that build stacks the way real ones are made (test_oracle_*.py).

A :class:`Bench` builds a stack spec's layers (:func:`tests.kernel.layers.build_layers`) under a fresh temp dir
and runs *generations* on them: mount with some options, compare the model with the kernel, apply the ops,
unmount, mount afresh and compare again (:func:`tests.kernel.layers.cycle`); :meth:`Bench.next_generation` then
makes the upper the topmost lower under a fresh upper and work dir, as image builds (and ``ufs-tui commit``) do.

Every comparison covers names, types, modes, sizes, symlink targets, content, and errors with their errno (a
failing ``lstat``, ``open``/``read`` or ``readdir``). A failure says everything needed to redo it by hand: the
spec, the options and ops log of every generation so far, the mount command of each, and a listing of every
layer (and, with ``index=on``, of the work dir, where the kernel keeps its index).

Random examples per option set by default (``UFS_ORACLE_*_EXAMPLES`` sets more): hard links 80 (x5 option sets),
generations 100 (x2, three generations each), same layers under each option 50 (x10), data-only layers 60 (x5),
middle-lower markers 80 (x3): 2010 stacks, about two minutes on a 2-core VM when the model agrees (CI: derandomized;
a failing explicit example stops its test at once, a random failure is shrunk first). ``--hypothesis-show-statistics``
shows how many stacks had what each test is about (redirect chains, metacopy files, index entries...).

``UFS_ORACLE_KNOWN`` (exploration only, never in CI): a file of disagreement signatures (one a line, as the
failure prints them); a failure whose differences all have known signatures is appended to
``UFS_ORACLE_KNOWN.log`` instead of failing, so a long random run goes on to find the *other* disagreements
(a line ``*`` knows every signature: a run that only counts and times).
"""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
from typing import Any

from hypothesis import HealthCheck, Phase, currently_in_test_context, event, settings

from tests.conftest import IN_CI
from tests.kernel.layers import (
    build_layers,
    chown_tree,
    describe_layers,
    facts_from_json,
    model_snapshot,
    run_in_private_mounts,
    run_in_userns,
)
from tests.nobody import UID
from tests.overlay import Facts, umount
from ufs_tui.core.demo import remove_tree
from ufs_tui.core.model.kernel_defaults import in_effect
from ufs_tui.core.model.stack import Stack


def examples(variable: str, default: int) -> int:
    """The number of random examples per test: ``$variable``, else ``default``."""
    return int(os.environ.get(variable, str(default)))


def oracle_settings(max_examples: int) -> settings:
    """test_oracle.SETTINGS with another example count: derandomized in CI (the same examples every run)."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=IN_CI,
        database=None if IN_CI else settings().database,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
        print_blob=True,
        # (no explain phase: which lines only failing examples ran says little here, and costs a minute a failure)
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    )


def compare(model: dict[str, Facts], kernel: dict[str, Facts]) -> list[tuple[str, Facts | None, Facts | None]]:
    """The paths where model and kernel differ, with each side's facts (None: that side has no such name)."""
    model = _settle_maybes(model, kernel)
    return [(p, model.get(p), kernel.get(p)) for p in sorted(set(model) | set(kernel)) if model.get(p) != kernel.get(p)]


def _settle_maybes(model: dict[str, Facts], kernel: dict[str, Facts]) -> dict[str, Facts]:
    """The model with each ``readdir-maybe`` (a merged impure dir whose ``readdir`` fails or leaves the names whose
    lookup fails out) settled by the kernel's outcome: the listing failed with the errno of one of those names
    (nothing below the dir is then compared), or it did not."""
    out = dict(model)
    for key, facts in model.items():
        if facts[0] != "readdir-maybe" or key not in out:  # (not in out: below a dir that failed to list)
            continue
        del out[key]
        k = kernel.get(key)
        errnos = {f[3] for p, f in model.items() if f[0] == "error" and p.startswith(key) and "/" not in p[len(key) :]}
        if k is not None and k[0] == "readdir-error" and k[3] in errnos:
            out = {p: f for p, f in out.items() if not p.startswith(key)}
            out[key] = k
    return out


def signature(options: str, m: Facts | None, k: Facts | None) -> str:
    """A coarse class of one difference (for sorting a long run's failures): options and what differs."""

    def side(f: Facts | None) -> str:
        if f is None:
            return "absent"
        if f[0] in ("error", "readdir-error"):
            return f"{f[0]}:{f[3]}"
        return f[0]

    def content(digest: str | None) -> str:
        if isinstance(digest, str) and digest.startswith("error:") and digest[6:].isdigit():
            return errno.errorcode.get(int(digest[6:]), digest)
        return "data"

    fields = ""
    if m is not None and k is not None and m[0] == k[0] and m[0] not in ("error", "readdir-error"):
        names = ("kind", "mode", "size", "target", "content")
        fields = " differ:" + "+".join(n for n, a, b in zip(names, m, k, strict=True) if a != b)
        if m[4] != k[4]:
            fields += f"({content(m[4])}/{content(k[4])})"
    return f"[{options or 'default'}] model={side(m)} kernel={side(k)}{fields}"


def _readable(facts: Facts | None) -> str:
    """Facts with a content error's errno number named ("error:2" -> "error:2 ENOENT")."""
    if facts is None:
        return "None"
    digest = facts[4]
    if isinstance(digest, str) and digest.startswith("error:") and digest[6:].isdigit():
        facts = (*facts[:4], f"{digest} {errno.errorcode.get(int(digest[6:]), '?')}")
    return str(facts)


class Bench:
    """One stack's layers under a temp dir, and the generations run on them so far."""

    def __init__(self, spec: dict[str, Any], ns: str = "trusted") -> None:
        self.spec = spec
        self.ns = ns
        self.root = tempfile.mkdtemp(prefix="ufs-oracle-")
        os.chmod(self.root, 0o755)
        paths = build_layers(self.root, spec, ns)
        self.lowers = [paths[f"l{n}"] for n in range(len(spec["lowers"]))]
        self.data = [paths[f"d{n}"] for n in range(len(spec.get("data") or []))]
        self.upper: str | None = paths.get("u")
        self.work, self.mnt = paths["w"], paths["m"]
        self.history: list[str] = []  # per generation: options, mount command, ops log
        self.generation = 0
        if ns == "user":
            chown_tree(self.root, UID)

    def __enter__(self) -> Bench:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if os.path.ismount(self.mnt):  # a failure between mount and unmount
            umount(self.mnt)
        if exc_type is None and currently_in_test_context():
            for what in sorted(self.features()):
                event(what)  # (--hypothesis-show-statistics: how many stacks had what)
        remove_tree(self.root)

    def features(self) -> set[str]:
        """What the layers hold that the test is about: kernel-made redirects, redirect chains (a redirect whose
        path runs through a dir redirected in a layer below), metacopy files, hard links, index entries."""
        out: set[str] = set()
        below: set[str] = set()  # merged paths of redirected dirs in the layers below the one scanned
        layers = [*reversed(self.lowers), *([self.upper] if self.upper else [])]  # bottom-up
        for root in layers:
            here: set[str] = set()
            for dirpath, dirnames, filenames in os.walk(root):
                rel = "/" + os.path.relpath(dirpath, root) if dirpath != root else ""
                for n in dirnames + filenames:
                    p = os.path.join(dirpath, n)
                    st = os.lstat(p)
                    xs = os.listxattr(p, follow_symlinks=False) if not stat.S_ISLNK(st.st_mode) else []
                    redirect = next((x for x in xs if x.endswith("overlay.redirect")), None)
                    if redirect and stat.S_ISDIR(st.st_mode):
                        value = os.getxattr(p, redirect, follow_symlinks=False).decode()
                        target = value if value.startswith("/") else f"{rel}/{value}"
                        here.add(f"{rel}/{n}")
                        out.add("redirect")
                        if any(target.startswith(b + "/") for b in below):
                            out.add("redirect chain")
                    if any(x.endswith("overlay.metacopy") for x in xs):
                        out.add("metacopy file")
                    if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                        out.add("hard link")
            below |= here
        index = os.path.join(self.work, "index")
        if os.path.isdir(index) and os.listdir(index):
            out.add("index entries")
        return out | self._middle_markers()

    def _middle_markers(self) -> set[str]:
        """Xattr whiteouts in a lower under the topmost one with something to hide below them; opaque=x there."""
        out: set[str] = set()
        for i, root in enumerate(self.lowers[1:], 1):
            for dirpath, dirnames, filenames in os.walk(root):
                for n in [*dirnames, *filenames, *([None] if dirpath == root else [])]:
                    p = dirpath if n is None else os.path.join(dirpath, n)
                    xs = os.listxattr(p, follow_symlinks=False) if not os.path.islink(p) else []
                    if any(x.endswith("overlay.opaque") and os.getxattr(p, x) == b"x" for x in xs):
                        out.add("opaque=x dir in a middle lower" if n is not None else "opaque=x layer root")
                    if n is not None and any(x.endswith("overlay.whiteout") for x in xs) and os.path.isfile(p):
                        rel = os.path.relpath(p, root)
                        if any(os.path.lexists(os.path.join(b, rel)) for b in self.lowers[i + 1 :]):
                            out.add("xattr whiteout in a middle lower, over an entry below")
        return out

    # ------------------------------------------------------------------------------------------------ layers
    def lowerdir(self) -> str:
        return ":".join(self.lowers) + "".join("::" + d for d in self.data)

    def stack(self, options: str) -> Stack:
        opts = in_effect([o for o in options.split(",") if o])  # what the mount does, defaults said
        work = self.work if self.upper else None
        return Stack.build(self.lowerdir(), self.upper, work, xattr_ns=self.ns, options=opts)  # type: ignore[arg-type]

    def mount_command(self, options: str) -> str:
        opts = f"lowerdir={self.lowerdir()}"
        if self.upper:
            opts += f",upperdir={self.upper},workdir={self.work}"
        opts += f",{options}" if options else ""
        return f"mount -t overlay overlay -o {opts} {self.mnt}"

    def next_generation(self, as_lower: bool = True) -> None:
        """A fresh upper and work dir; the old upper becomes the topmost lower (``as_lower``) or is dropped."""
        self.generation += 1
        if self.upper is not None and as_lower:
            self.lowers.insert(0, self.upper)
        self.upper = os.path.join(self.root, f"u{self.generation}")
        self.work = os.path.join(self.root, f"w{self.generation}")
        for p in (self.upper, self.work):
            os.mkdir(p)
            if self.ns == "user":
                os.lchown(p, UID, UID)

    def fresh_work(self) -> None:
        """Another (empty) work dir: the old one belongs to a mount of other options (index=on keeps state there)."""
        self.generation += 1
        self.work = os.path.join(self.root, f"w{self.generation}")
        os.mkdir(self.work)
        if self.ns == "user":
            os.lchown(self.work, UID, UID)

    def to_user_xattrs(self) -> None:
        """Make the layers fit a ``userxattr`` mount in a user namespace: every ``trusted.overlay.*`` xattr copied to
        ``user.overlay.*`` (the trusted ones stay: such a mount must ignore them), everything owned by uid 65534.
        (Only files and dirs can carry ``user.*`` xattrs.)"""
        for dirpath, dirnames, filenames in os.walk(self.root):
            for n in [*dirnames, *filenames, None]:
                p = dirpath if n is None else os.path.join(dirpath, n)
                if not stat.S_ISDIR(os.lstat(p).st_mode) and not stat.S_ISREG(os.lstat(p).st_mode):
                    continue
                for x in os.listxattr(p, follow_symlinks=False):
                    if x.startswith("trusted.overlay."):
                        value = os.getxattr(p, x, follow_symlinks=False)
                        os.setxattr(p, "user." + x[len("trusted.") :], value, follow_symlinks=False)
        chown_tree(self.root, UID)  # (clears set-uid bits: models are built afterwards)
        self.ns = "user"

    # ------------------------------------------------------------------------------------------------ running
    def run(self, options: str, ops: list[list[Any]], label: str = "") -> None:
        """One generation: model == kernel on a fresh mount, the ops through the mount, model == kernel again on
        a fresh mount of what they left. Raises AssertionError with everything needed to redo it by hand."""
        run = {
            "lowers": self.lowers + [":" + d for d in self.data],
            "upper": self.upper,
            "work": self.work if self.upper else None,
            "mnt": self.mnt,
            "options": options,
            "ops": ops,
        }
        command = self.mount_command(options)
        before_model = model_snapshot(self.stack(options))
        out = run_in_userns(run) if self.ns == "user" else run_in_private_mounts(run)
        after_model = model_snapshot(self.stack(options))
        n = len(self.history) + 1
        self.history.append(
            f"generation {n}{label} options={options!r} ns={self.ns}\n    {command}\n    ops: "
            + ("; ".join(out["log"]) or "(none)")
        )
        for when, model, kernel in (("before", before_model, out["before"]), ("after", after_model, out["after"])):
            diffs = compare(model, facts_from_json(kernel))
            if diffs:
                self._fail(f"generation {n}, {when} its ops", options, diffs)

    def _fail(self, when: str, options: str, diffs: list[tuple[str, Facts | None, Facts | None]]) -> None:
        # (what differs below a dir that one side cannot list follows from that: one signature says it)
        unlisted = [p for p, m, k in diffs if "readdir-error" in (m or ("",))[0] + (k or ("",))[0]]
        signatures = sorted(
            {signature(options, m, k) for p, m, k in diffs if not any(p.startswith(d) and p != d for d in unlisted)}
        )
        text = (
            f"model != kernel in {when} (options={options!r}, ns={self.ns})\n"
            + "\n".join(f"  {p!r}: model={_readable(m)} kernel={_readable(k)}" for p, m, k in diffs)
            + "\nsignatures:\n"
            + "\n".join(f"  {s}" for s in signatures)
            + "\nspec (python -m tests.kernel.layers build DIR SPEC makes its layers):\n  "
            + json.dumps(self.spec)
            + "\n"
            + "\n".join(self.history)
            + "\nlayers now:\n"
            + describe_layers(self._labelled())
        )
        if _known(signatures, text):
            return
        raise AssertionError(text)

    def _labelled(self) -> dict[str, str]:
        out = {f"lower:{n}": p for n, p in enumerate(self.lowers)}
        out |= {f"data:{n}": p for n, p in enumerate(self.data)}
        if self.upper:
            out["upper"] = self.upper
            index = os.path.join(self.work, "index")
            if os.path.isdir(index) and os.listdir(index):
                out["work/index"] = index
        return out


def _known(signatures: list[str], text: str) -> bool:
    """Exploration runs (``UFS_ORACLE_KNOWN``, never set in CI): log a failure of known signatures, don't raise."""
    path = os.environ.get("UFS_ORACLE_KNOWN")
    if not path or IN_CI:
        return False
    with open(path) as f:
        known = {line.strip() for line in f if line.strip()}
    if "*" not in known and not set(signatures) <= known:
        return False
    with open(path + ".log", "a") as f:
        f.write(f"{os.environ.get('PYTEST_CURRENT_TEST', '?')}\n{text}\n" + "=" * 100 + "\n")
    return True
