"""Hypothesis strategies of the kernel oracle: layer trees (specs of :func:`tests.kernel.layers.build_tree`) and ops.

The first part is what test_oracle.py has always drawn (its derandomized examples depend on it: change it only
on purpose). The rest draws what real stacks are made of: hard links, dir-rich trees for generations of renames,
metacopy files redirected into data-only layers, and overlapping layers with xattr whiteouts in middle lowers.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

from tests.kernel.layers import OPS, OPS_MORE

NAMES = ["a", "b", "c", "d"]

# ------------------------------------------------------------------------------------------------ test_oracle.py's
file_node = st.tuples(
    st.just("file"), st.binary(max_size=12).map(bytes.hex), st.sampled_from([0o644, 0o600, 0o755, 0o4755])
).map(list)
symlink_node = st.tuples(
    st.just("symlink"), st.sampled_from(["a", "../b", "c/d", "/etc/passwd", "/nonexistent/x", "@self", "/"])
).map(list)
fifo_node = st.tuples(st.just("fifo"), st.sampled_from([0o644, 0o600])).map(list)
marker_node = st.sampled_from([["wh"], ["xwh"]])
leaf = st.one_of(file_node, file_node, symlink_node, fifo_node, marker_node)


def dir_node(children: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    return st.tuples(
        st.just("dir"),
        st.dictionaries(st.sampled_from(NAMES), children, max_size=3),
        st.sampled_from([0o755, 0o755, 0o700, 0o750]),
        st.sampled_from([None, None, None, "y", "x", "yes", "Y", ""]),
        # Hand-made redirects: FIXED only (a random one may duplicate a lower dir: ESTALE). Invalid values are
        # in test_markers.py: where the kernel reads one, the lookup fails, and whether the parent's readdir
        # still lists the name then depends on inode-number bookkeeping (impure dirs, xino), not on markers.
        # Redirects the kernel makes itself come from generations (test_oracle_generations.py).
        st.just(None),
    ).map(list)


def maybe_decoy(node: list[Any]) -> st.SearchStrategy[list[Any]]:
    if node[0] in ("file", "dir"):
        return st.sampled_from([node, node, node, ["decoy", node]])
    return st.just(node)


node = st.recursive(leaf, dir_node, max_leaves=8).flatmap(maybe_decoy)
tree = st.dictionaries(st.sampled_from(NAMES), node, max_size=4)


def ops(names: tuple[str, ...] = OPS, max_size: int = 8, min_size: int = 0) -> st.SearchStrategy[list[list[Any]]]:
    """Lists of ``[op, i, j, k, data_hex]`` (see :func:`tests.kernel.layers.apply_ops`)."""
    one = st.tuples(
        st.sampled_from(names),
        st.integers(0, 99),
        st.integers(0, 99),
        st.integers(0, 9),
        st.binary(max_size=8).map(bytes.hex),
    ).map(list)
    return st.lists(one, min_size=min_size, max_size=max_size)


STACKS = st.fixed_dictionaries({"lowers": st.lists(tree, min_size=1, max_size=4), "upper": tree, "ops": ops()})


# ------------------------------------------------------------------------------------------------ helpers
def nodes(tree: dict[str, Any], prefix: str = "") -> list[tuple[str, list[Any]]]:
    """(path relative to the layer root, node with any decoy unwrapped) of every node of a spec tree, parents
    first."""
    out = []
    for name, n in tree.items():
        if name == ".":
            continue
        inner = n[1] if n[0] == "decoy" else n
        out.append((f"{prefix}{name}", inner))
        if inner[0] == "dir":
            out += nodes(inner[1], f"{prefix}{name}/")
    return out


def children(tree: dict[str, Any], path: str) -> dict[str, Any]:
    """The children dict of the dir at ``path`` ("" = the root) of a spec tree."""
    for part in filter(None, path.split("/")):
        n = tree[part]
        tree = (n[1] if n[0] == "decoy" else n)[1]
    return tree


# ------------------------------------------------------------------------------------------------ hard links
LINK_NAMES = ["a", "b", "c", "h", "k"]


def with_links(trees: st.SearchStrategy[dict[str, Any]], min_links: int = 0, max_links: int = 3) -> Any:
    """Trees with ``["link", path]`` nodes added: hard links to non-directories of the same tree (regular files
    mostly), anywhere."""

    @st.composite
    def draw_tree(draw: st.DrawFn) -> dict[str, Any]:
        t = copy.deepcopy(draw(trees))
        for _ in range(draw(st.integers(min_links, max_links))):
            present = nodes(t)
            targets = [p for p, n in present if n[0] not in ("dir", "link")]
            files = [p for p, n in present if n[0] == "file"]
            if not targets:
                break
            pool = st.sampled_from(files) | st.sampled_from(files) if files else st.sampled_from(targets)
            target = draw(pool | st.sampled_from(targets))
            parent = draw(st.sampled_from(["", *(p for p, n in present if n[0] == "dir")]))
            name = draw(st.sampled_from(LINK_NAMES))
            where = children(t, parent)
            if name not in where:
                where[name] = ["link", target]
        return t

    return draw_tree()


# Files mostly (what hard links and copy-up are about), and dirs to hold second names.
file_rich_node = st.recursive(
    st.one_of(file_node, file_node, file_node, symlink_node, marker_node), dir_node, max_leaves=6
).flatmap(maybe_decoy)
file_rich_tree = st.tuples(st.dictionaries(st.sampled_from(NAMES), file_rich_node, max_size=4), file_node).map(
    lambda t: {**t[0], "f": t[1]}  # (always a file to link to)
)
# Ops that reach every name of a hard-linked file: writes, chmods (metacopy), deletes, more links, renames.
LINK_OPS = (
    "write",
    "append",
    "append",
    "chmod",
    "chmod_file",
    "chmod_file",
    "delete",
    "link",
    "rename",
    "create",
    "rmrf",
)
LINK_STACKS = st.fixed_dictionaries(
    {
        "lowers": st.lists(with_links(file_rich_tree, min_links=1), min_size=1, max_size=3),
        "upper": with_links(tree),
        "ops": ops(LINK_OPS, max_size=8, min_size=2),
    }
)

# ------------------------------------------------------------------------------------------------ generations
# Nested dirs (renamed dirs make redirects; renamed again in a later generation, redirect chains): the top level
# is dirs only, and every generation renames dirs.
deep_node = st.recursive(
    st.one_of(file_node, file_node, symlink_node, marker_node),
    lambda ch: dir_node(ch) | dir_node(ch),
    max_leaves=10,
)
deep_tree = st.dictionaries(st.sampled_from(NAMES), dir_node(deep_node), min_size=2, max_size=3)
GEN_OPS = (*OPS_MORE, "rename_dir", "rename_dir", "rename_dir", "rename_dir", "rename_dir", "chmod_file", "rename")


def generation_ops(max_size: int = 6, names: tuple[str, ...] = GEN_OPS) -> st.SearchStrategy[list[list[Any]]]:
    """One generation's ops: at least one dir rename."""
    first = st.tuples(st.just("rename_dir"), st.integers(0, 99), st.integers(0, 99), st.integers(0, 9), st.just(""))
    return st.tuples(first.map(list), ops(names, max_size=max_size - 1, min_size=2)).map(lambda t: [t[0], *t[1]])


GENERATIONS = st.fixed_dictionaries(
    {
        "lowers": st.lists(deep_tree, min_size=1, max_size=2),
        "upper": tree,
        "gens": st.lists(generation_ops(), min_size=3, max_size=3),
    }
)
# Options test: a first generation (redirect_dir=on,metacopy=on) makes redirects and metacopy files; then the
# same layers under other options, with its upper as the topmost lower under a fresh upper, or as the upper.
OPTION_STACKS = st.fixed_dictionaries(
    {
        "lowers": st.lists(deep_tree, min_size=1, max_size=2),
        "upper": tree,
        "gen": generation_ops(8, (*GEN_OPS, "chmod_file", "chmod_file", "chmod_file")),
        "ops": ops(OPS_MORE, max_size=6),
        "as_upper": st.booleans(),
    }
)


# ------------------------------------------------------------------------------------------------ data-only layers
DATA_NAMES = ["o", "p", "a"]  # "a": data paths a normal lower may have too


@st.composite
def data_stacks(draw: st.DrawFn) -> dict[str, Any]:
    """Normal lowers with metacopy files (``["meta", size, redirect, mode]``) whose absolute redirects point into
    data-only layers (or at nothing, or through a normal lower's dirs), data layers, an upper (or none: read-only).

    No redirect ends at a non-directory of a normal lower: that entry is visible under its own name too, and two
    names of one lower inode get ESTALE from the kernel for whichever is looked up second (its inode cache, so an
    order, not the layers, decides: like a random dir redirect, test_oracle.py)."""
    data_tree = st.dictionaries(st.sampled_from(DATA_NAMES), node, min_size=1, max_size=3)
    data = draw(st.lists(data_tree, min_size=1, max_size=2))
    sizes = {"/" + p: len(n[1]) // 2 for t in data for p, n in nodes(t) if n[0] == "file"}
    fixed: list[str | None] = [None, "/o/nothere", "/o", "/a", "/b/c", "/a/b"]
    redirect = st.sampled_from(sorted(sizes)) | st.sampled_from(fixed) if sizes else st.sampled_from(fixed)

    def size_of(r: str | None) -> st.SearchStrategy[int]:
        return st.just(sizes[r]) | st.integers(0, 20) if r in sizes else st.integers(0, 20)

    meta = redirect.flatmap(
        lambda r: st.tuples(st.just("meta"), size_of(r), st.just(r), st.sampled_from([0o644, 0o755])).map(list)
    )
    normal_node = st.recursive(st.one_of(meta, meta, file_node, marker_node, symlink_node), dir_node, max_leaves=6)
    normal_tree = st.dictionaries(st.sampled_from(NAMES), normal_node, min_size=1, max_size=4)
    upper_node = st.recursive(st.one_of(file_node, marker_node, meta), dir_node, max_leaves=4)
    lowers = copy.deepcopy(draw(st.lists(normal_tree, min_size=1, max_size=2)))
    upper = copy.deepcopy(draw(st.none() | st.dictionaries(st.sampled_from(NAMES), upper_node, max_size=3)))
    taken = {"/" + p for t in lowers for p, n in nodes(t) if n[0] not in ("dir", "wh")}
    for t in [*lowers, upper or {}]:
        for _, n in nodes(t):
            if n[0] == "meta" and n[2] in taken:
                n[2] = "/o/nothere"
    return {"lowers": lowers, "data": data, "upper": upper, "ops": draw(ops(OPS_MORE, max_size=6))}


# ------------------------------------------------------------------------------------------------ middle lowers
# Few names, so layers overlap: xattr whiteouts and opaque=x dirs in every lower, not only the top one, with
# something below them to hide and something above them to merge with; layer roots marked opaque=x too.
X_NAMES = ["a", "b", "c"]
x_node = st.recursive(
    st.one_of(file_node, marker_node, st.just(["xwh"])),
    lambda ch: st.tuples(
        st.just("dir"),
        st.dictionaries(st.sampled_from(X_NAMES), ch, max_size=3),
        st.just(0o755),
        st.sampled_from([None, None, "x", "x", "y"]),
        st.just(None),
    ).map(list),
    max_leaves=6,
)
x_tree = st.tuples(
    st.dictionaries(st.sampled_from(X_NAMES), x_node, min_size=2, max_size=3), st.sampled_from([None, None, "x"])
).map(lambda t: {**t[0], ".": ["root", t[1]]} if t[1] else t[0])
XWH_STACKS = st.fixed_dictionaries(
    {"lowers": st.lists(x_tree, min_size=3, max_size=4), "upper": x_tree, "ops": ops(OPS_MORE, max_size=6)}
)
