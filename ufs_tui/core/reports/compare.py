"""Compare any two trees, B against A: two sources' merged views, two layers' own trees, or any mix of them.

A :class:`Tree` is the merged view of a :class:`Stack` (what the kernel shows where the stack is mounted), or
one layer's own tree (``SOURCE@lower:N``): what that layer holds, its markers decoded (a whiteout is no file
of it, an opaque dir is a dir), nothing below it merged in. A plain dir is the stack of that one dir.

:meth:`Comparison.differences` walks both trees at once, one dir at a time (the two listings of a dir merged
by name, nothing else kept), and yields a :class:`Difference` per path where they differ, in tree order (the
names of a dir sorted by their bytes, a dir before what it holds):

* ``A``: only in B; and so is everything under a dir that is only in B;
* ``D``: only in A (one line for a dir, none for what it held, as ``docker diff``);
* ``C``: in both, and they differ in type (then only the type is said), mode (not for symlinks), owner
  (uid:gid), size (regular files), symlink target, device number, or content (regular files: read only when
  the sizes are equal, and compared by the sha256 of each; when the sizes differ the content is said to
  differ too, unread). A dir replaced by a non-dir is one ``C`` line, nothing under it; a non-dir replaced
  by a dir is ``C``, and what the dir holds is ``A``.

Not compared: times, xattrs, hard links (inode numbers), the size of a dir. ``/`` is compared too.

Only what can differ is read: a dir whose copies on both sides are the same real layer dirs, over the same
layers, read under the same options, is the same tree on both sides and is not entered (two images that share
their bottom layers: only the dirs their other layers touch are read); a non-dir whose copies are the same real
file (and data) is the same.

Problems are recorded in :attr:`Comparison.errors` (merged path -> problem) and that path is not compared
further: a dir that cannot be read on a side (its names on the other side are not reported either), a file
that cannot be read to compare its content, an entry the kernel refuses to look up. Nothing raises for them.
A name that vanishes while the walk runs is absent on its side from then on.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from ..model import status as S
from ..model.content import DEFAULT_CAP, unified_diff
from ..model.display import b64, human_size, is_valid_utf8, printable
from ..model.entry import Entry, Source, join, normpath
from ..model.errors import StackError
from ..model.inode_index import index_used
from ..model.markers import KIND_BY_FMT
from ..model.merge import OverlayView
from ..model.stack import LAYER_NAME, Layer, LayerFS, Stack, fs_digest, fs_holding
from ..panes import own_stack

ADDED, CHANGED, DELETED = S.DIFF_ADDED, S.DIFF_CHANGED, S.DIFF_DELETED

# ------------------------------------------------------------------------------------ SOURCE@LAYER

# A layer's name as Layer.name spells it (no leading zeros): the only suffixes split off a spec.


def split_layer(spec: str, is_source: Callable[[str], bool] | None = None) -> tuple[str, str | None]:
    """``SOURCE@LAYER`` as (SOURCE, LAYER); (spec, None) when it names no layer.

    Only a last ``@`` followed by a layer name (``upper``, ``lower:N``, ``data:N``) splits, so a path or an
    image reference holding ``@`` (``alpine@sha256:...``) stays whole; and so does a spec that names a source
    itself (an existing path, ``is_source``) where the part before the ``@`` names none (a file called
    ``x@upper``). Raises StackError for a layer with no source before it."""
    head, sep, tail = spec.rpartition("@")
    if not sep or LAYER_NAME.fullmatch(tail) is None:
        return spec, None
    if is_source is None:
        from ..sources import is_source_spec

        is_source = is_source_spec
    if is_source(spec) and (not head or not is_source(head)):
        return spec, None
    if not head:
        raise StackError(spec, f"no SOURCE before '@{tail}' (fix: SOURCE@{tail}, e.g. docker-image:NAME@{tail})")
    return head, tail


# ------------------------------------------------------------------------------------ the two sides


class Tree:
    """One side of a comparison: the merged view of ``stack``, or ``layer``'s own tree (a layer of ``stack``).

    ``label`` names the side in problems ("A", "B")."""

    def __init__(self, stack: Stack, layer: Layer | None = None, label: str = "") -> None:
        self.stack = stack
        self.layer = layer
        self.label = label
        self.view = OverlayView(own_stack(stack, layer) if layer is not None else stack)
        own = self.view.stack
        self._fs = [(la.path, la.fs) for la in own.all_layers if la.fs is not None]
        self.has_fs = bool(self._fs)
        # What the merged view of a dir depends on besides its own sources (None: something no source tuple
        # says, the inode index of index=on: such dirs are always read).
        self.context: tuple[object, ...] | None = (
            None
            if own.upper is not None and own.work is not None and index_used(own.options)
            else (own.xattr_ns, tuple(sorted(o for o in own.options if _lookup_option(o))), _paths(own.data_layers))
        )
        # The layers a dir's lookups can reach from its topmost source down (absolute redirects, the bottom
        # layer reading no redirect): by id of the topmost source's layer.
        layers = own.layers
        self._from: dict[int, tuple[tuple[str, str], ...]] = {
            id(la): tuple((x.role, x.path) for x in layers[i:]) for i, la in enumerate(layers)
        }

    def dir_key(self, sources: tuple[Source, ...]) -> tuple[object, ...] | None:
        """What decides the merged tree under a dir with these sources: equal keys, equal trees (None: unknown)."""
        if self.context is None or not sources:
            return None
        reach = self._from.get(id(sources[0][0]))
        if reach is None:  # (a source from outside the stack: none is)
            return None
        return self.context, reach, tuple((layer.role, real) for layer, real in sources)

    def fs_of(self, real: str) -> LayerFS | None:
        """The LayerFS ``real`` is read through (an archive's layer), None for a path on disk."""
        return fs_holding(real, self._fs)

    def top(self, path: str) -> Entry | None:
        """The entry at merged path ``path`` (None: not in this tree)."""
        return self.view.root_entry() if path == "/" else self.view.lookup(path)


_LOOKUP_OPTIONS = ("metacopy", "redirect_dir", "userxattr", "index", "nfs_export", "oci-whiteouts", "verity")


def _lookup_option(option: str) -> bool:
    """Whether a mount option changes what a lookup finds (the others, ``ro`` or ``xino``, do not)."""
    return option.partition("=")[0] in _LOOKUP_OPTIONS


def _paths(layers: tuple[Layer, ...]) -> tuple[str, ...]:
    return tuple(la.path for la in layers)


# ------------------------------------------------------------------------------------ differences


@dataclass(frozen=True)
class Field:
    """One way a path differs: the field's name and its value in A and in B."""

    name: str  # type, mode, owner, size, target, device, content
    a: str | int | None
    b: str | int | None


@dataclass(frozen=True)
class Difference:
    """One path where B differs from A: ``kind`` A (only in B), D (only in A) or C (in both: ``fields``)."""

    kind: str
    path: str
    type: str  # B's type (A's for D): file, dir, symlink, chardev, blockdev, fifo, socket
    fields: tuple[Field, ...] = ()
    a: Entry | None = None  # A's entry (None for A lines)
    b: Entry | None = None  # B's entry (None for D lines)

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)


class Meta(NamedTuple):
    """What ``lstat`` through the mount shows of an entry (its topmost copy), and a symlink's target."""

    kind: str
    mode: int
    uid: int
    gid: int
    size: int
    rdev: int
    target: str | None


class _Gone(Exception):
    """The entry vanished from its layer since its dir was listed."""


# The items of the walk: (merged path, A's entry, B's entry), either may be None.
_Pair = tuple[str, Entry | None, Entry | None]


class Comparison:
    """B against A (see the module doc). :attr:`errors`: merged path -> problem, filled as the walk goes."""

    def __init__(self, a: Tree, b: Tree) -> None:
        self.a, self.b = a, b
        a.label, b.label = a.label or "A", b.label or "B"
        self.errors: dict[str, str] = {}
        self._same_rules = a.context is not None and a.context == b.context
        self._fs = a.has_fs or b.has_fs

    def differences(self, path: str = "/") -> Iterator[Difference]:
        """Every difference at ``path`` and below it, in tree order. Raises StackError if neither tree has it."""
        path = normpath(path)
        ea, eb = self.a.top(path), self.b.top(path)
        if ea is None and eb is None:
            raise StackError(path, "neither A nor B has this path")
        todo: list[Iterator[_Pair]] = [iter([(path, ea, eb)])]
        while todo:
            item = next(todo[-1], None)
            if item is None:
                todo.pop()
                continue
            found, below = self._visit(*item)
            if found is not None:
                yield found
            if below is not None:
                todo.append(below)

    def _visit(self, path: str, ea: Entry | None, eb: Entry | None) -> tuple[Difference | None, Iterator[_Pair] | None]:
        """One path: its difference, if any, and the pairs of what is under it to visit next, if anything."""
        ma = mb = None
        ra = rb = ""
        if ea is not None and eb is not None:
            ra, rb = _real(ea), _real(eb)
            if self._same(ea, eb, ra, rb):
                return None, None
            if ea._more is None is eb._more and ea.kind == "file" == eb.kind and not self._fs:
                opened, found = self._plain_files(path, ea, eb, ra, rb)
                if opened:
                    return found, None
            try:
                ma = self._meta(self.a, ea, ra)
            except _Gone:
                ea = None
            try:
                mb = self._meta(self.b, eb, rb)
            except _Gone:
                eb = None
        if eb is None:
            return (None if ea is None else Difference(DELETED, path, ea.kind, a=ea)), None
        if ea is None:
            return Difference(ADDED, path, eb.kind, b=eb), self._children(path, None, eb) if _is_dir(eb) else None
        if ma is None or mb is None:  # (a problem, recorded)
            return None, None
        fields = self._fields(ea, eb, ma, mb, _source(ea, ra), _source(eb, rb))
        found = Difference(CHANGED, path, mb.kind, fields, ea, eb) if fields else None
        if not _is_dir(eb) or mb.kind != "dir":
            return found, None
        return found, self._children(path, ea if _is_dir(ea) and ma.kind == "dir" else None, eb)

    def _plain_files(self, path: str, ea: Entry, eb: Entry, ra: str, rb: str) -> tuple[bool, Difference | None]:
        """Two plain regular files (the bulk of most trees) opened at once: their metadata from ``fstat`` and
        their content from the same fds. (False, None) where one cannot be opened as a regular file (gone,
        unreadable, swapped): the general way says what it is."""
        try:
            fa = _open_regular(ra)
        except OSError:
            return False, None
        try:
            fb = _open_regular(rb)
        except OSError:
            os.close(fa[0])
            return False, None
        try:
            ma, mb = _meta_of(fa[1]), _meta_of(fb[1])
            fields = self._fields(ea, eb, ma, mb, ra, rb, (fa[0], fb[0]))
        finally:
            os.close(fa[0])
            os.close(fb[0])
        return True, Difference(CHANGED, path, "file", fields, ea, eb) if fields else None

    def _same(self, ea: Entry, eb: Entry, ra: str, rb: str) -> bool:
        """Whether both sides show the very same thing here: the same real dirs merged under the same rules (a
        dir), the same real file and data (anything else)."""
        if ea.status == S.ERROR or eb.status == S.ERROR:
            return False
        if ea.kind == "dir" and eb.kind == "dir":
            sa, sb = ea.sources, eb.sources
            if sa is None or sb is None or not self._same_rules:
                return False
            key = self.a.dir_key(sa)
            return key is not None and key == self.b.dir_key(sb)
        return ra == rb and _source(ea, ra) == _source(eb, rb) and ea.kind == eb.kind

    def _meta(self, tree: Tree, e: Entry, real: str) -> Meta | None:
        """What ``lstat`` shows of ``e``'s topmost copy (at ``real``); None (a problem recorded) where it cannot
        be told. Raises _Gone if it vanished."""
        if e.status == S.ERROR:
            self._problem(e.path, tree, e.extra.get("error", "") if e.extra else "the kernel refuses this lookup")
            return None
        fs = tree.fs_of(real) if tree.has_fs else None
        if fs is not None:
            node = fs.probe(real, tree.view.stack.xattr_ns)
            if node is None:
                raise _Gone
            return Meta(node.kind, node.mode, node.uid, node.gid, node.size, node.rdev, node.target)
        try:
            st = os.lstat(real)
            target = os.fsdecode(os.readlink(real)) if stat.S_ISLNK(st.st_mode) else None
        except (FileNotFoundError, NotADirectoryError):
            raise _Gone from None
        except OSError as err:
            self._problem(e.path, tree, f"{printable(real)}: {err.strerror or err}")
            return None
        return _meta_of(st, target)

    def _fields(
        self, ea: Entry, eb: Entry, ma: Meta, mb: Meta, sa: str, sb: str, fds: tuple[int, int] | None = None
    ) -> tuple[Field, ...]:
        """How the two copies of a path differ (see the module doc); ``sa``, ``sb``: where their data is (or
        ``fds``, open on both)."""
        if ma.kind != mb.kind:
            return (Field("type", ma.kind, mb.kind),)
        out: list[Field] = []
        if ma.mode != mb.mode and ma.kind != "symlink":
            out.append(Field("mode", ma.mode, mb.mode))
        if (ma.uid, ma.gid) != (mb.uid, mb.gid):
            out.append(Field("owner", f"{ma.uid}:{ma.gid}", f"{mb.uid}:{mb.gid}"))
        if ma.kind == "symlink" and ma.target != mb.target:
            out.append(Field("target", ma.target, mb.target))
        elif ma.kind in ("chardev", "blockdev") and ma.rdev != mb.rdev:
            out.append(Field("device", _device(ma.rdev), _device(mb.rdev)))
        elif ma.kind == "file":
            if ma.size != mb.size:
                out += [Field("size", ma.size, mb.size), Field("content", None, None)]
            else:
                content = self._content(ea, eb, ma.size, sa, sb, fds)
                if content is not None:
                    out.append(content)
        return tuple(out)

    def _content(
        self, ea: Entry, eb: Entry, size: int, sa: str, sb: str, fds: tuple[int, int] | None = None
    ) -> Field | None:
        """The content field of two regular files of ``size`` bytes when what they hold differs; None when it is
        the same, or cannot be read (a problem recorded). Small files are read whole and compared, big ones
        hashed as they are read; the sha256 of each is the field's values."""
        if sa == sb:  # the same data file (a metacopy file's data below it, on both sides)
            return None
        whole = size <= _WHOLE
        got: list[bytes | str] = []
        for i, (tree, e, real) in enumerate(((self.a, ea, sa), (self.b, eb, sb))):
            if e.data_error:
                self._problem(e.path, tree, e.data_error)
                return None
            try:
                if fds is not None:
                    got.append(_read_fd(fds[i], size) if whole else _hash_fd(fds[i]))
                else:
                    got.append(_data(real, size, tree.fs_of(real) if tree.has_fs else None, whole))
            except OSError as err:
                self._problem(e.path, tree, f"cannot read it: {err.strerror or err}")
                return None
        da, db = got
        if da == db:
            return None
        return Field("content", _digest_of(da), _digest_of(db))

    def _children(self, path: str, ea: Entry | None, eb: Entry) -> Iterator[_Pair]:
        """The pairs of the names under dir ``path`` (A's side: none when ``ea`` is None), sorted by bytes.

        Where a side's dir cannot be read whole, its problem is recorded and no name under it is visited."""
        listed_a = self._listing(self.a, ea) if ea is not None else {}
        listed_b = self._listing(self.b, eb)
        if listed_a is None or listed_b is None:
            return
        names = listed_a.keys() | listed_b.keys()
        ordered = sorted(names) if all(n.isascii() for n in names) else sorted(names, key=os.fsencode)
        for name in ordered:
            yield join(path, name), listed_a.get(name), listed_b.get(name)

    def _listing(self, tree: Tree, e: Entry) -> dict[str, Entry] | None:
        """Name -> entry of the merged dir ``e`` (not kept by the view); None (a problem recorded) if one of
        its layer dirs cannot be read."""
        sources = e.sources
        if sources is None:
            return {}
        view = tree.view
        try:
            entries = view.scan_dir(e.path, sources)
        except OSError as err:  # (the scans record what they cannot read; anything else: here)
            self._problem(e.path, tree, err.strerror or str(err))
            return None
        except StackError as err:
            self._problem(e.path, tree, err.problem)
            return None
        unread = [(layer, real) for layer, real in sources if real in view.errors]
        if unread:
            layer, real = unread[0]
            self._problem(e.path, tree, f"cannot read {layer.name} {printable(real)}: {view.errors[real]}")
            return None
        return {x.name: x for x in entries}

    def _problem(self, path: str, tree: Tree, what: str) -> None:
        self.errors.setdefault(path, f"in {tree.label}: {what}")

    # ------------------------------------------------------------------------ contents

    def content_diff(self, d: Difference, cap: int = DEFAULT_CAP) -> str:
        """The unified diff of a changed regular file's two contents (the first ``cap`` bytes of each), or one
        line saying why there is none: binary files (with both sizes), or unreadable. "" when the content is
        not among the fields."""
        ea, eb = d.a, d.b
        if ea is None or eb is None or d.field("content") is None:
            return ""
        ca = self.a.view.read_content(ea.source, cap)
        cb = self.b.view.read_content(eb.source, cap)
        label_a, label_b = "A:" + d.path, "B:" + d.path
        if ca.kind == "binary" or cb.kind == "binary":
            sizes = f"{human_size(ca.size)} and {human_size(cb.size)}"
            return f"Binary files {printable(label_a)} and {printable(label_b)} differ ({sizes})\n"
        text, note = unified_diff(ca, cb, label_a, label_b, cap)
        return text + (f"({note})\n" if note else "")


def _is_dir(e: Entry) -> bool:
    return e.kind == "dir" and e.sources is not None


def _device(rdev: int) -> str:
    return f"{os.major(rdev)}:{os.minor(rdev)}"


_WHOLE = 1 << 20  # files up to this size are read whole and compared; bigger ones hashed chunk by chunk
_OPEN = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def _real(e: Entry) -> str:
    """``e.real_path``, made inline for the plain entries that are most of any listing."""
    more = e._more  # None, a symlink's target, or (target, sources, extra): see Entry
    if more is None or more.__class__ is str:
        path = e.path
        return e._src[1] + path[path.rfind("/") :]
    return e.real_path


def _source(e: Entry, real: str) -> str:
    """``e.source`` for an entry whose real path is ``real``: where its data is."""
    more = e._more
    if more.__class__ is tuple and more[2] is not None and "data" in more[2]:
        return more[2]["data"]
    return real


def _open_regular(real: str) -> tuple[int, os.stat_result]:
    """An fd on the regular file at ``real`` and its ``fstat``: never a symlink followed, nor a FIFO or a device
    left open (a swap since it was listed). Raises OSError (errno 0: not a regular file)."""
    fd = os.open(real, _OPEN)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(0, "no longer a regular file")
    except OSError:
        os.close(fd)
        raise
    return fd, st


def _meta_of(st: os.stat_result, target: str | None = None) -> Meta:
    kind = KIND_BY_FMT.get(stat.S_IFMT(st.st_mode), "unknown")
    return Meta(kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_size, st.st_rdev, target)


def _data(real: str, size: int, fs: LayerFS | None, whole: bool) -> bytes | str:
    """What the regular file at ``real`` holds (``whole``: all of it, else its ``sha256:HEX``, read as a stream).
    Raises OSError."""
    if fs is not None:
        return fs.read(real, size + 1) if whole else "sha256:" + fs_digest(fs, real).hex()
    fd = _open_regular(real)[0]
    try:
        return _read_fd(fd, size) if whole else _hash_fd(fd)
    finally:
        os.close(fd)


def _read_fd(fd: int, size: int) -> bytes:
    """All of a small regular file open on ``fd``, whose ``size`` was told (a regular file reads short only at
    its end: one read, unless it grew)."""
    data = os.read(fd, size + 1)
    if len(data) <= size:
        return data
    chunks = [data]
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def _hash_fd(fd: int) -> str:
    """``sha256:HEX`` of a regular file open on ``fd``, read as a stream."""
    with open(fd, "rb", closefd=False) as f:
        return "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()


def _hex(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _digest_of(got: bytes | str) -> str:
    """What :meth:`Comparison._content` read of a file: its data (then hashed here), or its digest already."""
    return got if isinstance(got, str) else _hex(got)


# ------------------------------------------------------------------------------------ output


def text_line(d: Difference) -> str:
    """``KIND PATH`` and, for C, what differs: ``C /etc/motd  size 12 → 30, content`` (names made printable)."""
    line = f"{d.kind} {printable(d.path)}"
    return f"{line}  {fields_text(d)}" if d.fields else line


def fields_text(d: Difference) -> str:
    """What differs, each field with both values: ``size 12 → 30, content`` ("" for A and D: no fields)."""
    return ", ".join(_field_text(f) for f in d.fields)


def _field_text(f: Field) -> str:
    if f.name == "content":
        return "content"
    return f"{f.name} {_value_text(f.name, f.a)} → {_value_text(f.name, f.b)}"


def _value_text(name: str, value: str | int | None) -> str:
    if value is None:
        return "-"
    if name == "mode" and isinstance(value, int):
        return f"{value:04o}"
    return printable(str(value))


def json_line(d: Difference, diff: str | None = None) -> str:
    """One JSON object: kind, path (and ``path_b64`` for a path that is not UTF-8), type, and for C ``fields``:
    each field that differs with its value in A and in B (``a_b64``/``b_b64`` for a target that is not UTF-8;
    content: ``sha256:HEX`` of each, null when the sizes differ and it was not read); ``diff`` if given."""
    obj: dict[str, object] = {"kind": d.kind, "path": d.path}
    if not is_valid_utf8(d.path):
        obj["path_b64"] = b64(d.path)
    obj["type"] = d.type
    if d.fields:
        fields: dict[str, object] = {}
        for f in d.fields:
            value: dict[str, object] = {"a": f.a, "b": f.b}
            for side, v in (("a", f.a), ("b", f.b)):
                if isinstance(v, str) and not is_valid_utf8(v):
                    value[side + "_b64"] = b64(v)
            fields[f.name] = value
        obj["fields"] = fields
    if diff is not None:
        obj["diff"] = diff
    return json.dumps(obj, separators=(",", ":"))
