"""A stack being edited: the stack editor's model (no textual). Lowers top first, the upper, the work dir and
the mount options the editor cycles; :meth:`StackDraft.stack` makes the Stack (numbered the one way,
:meth:`Stack.relayered`). Each edit returns what it did, in words the editor shows."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .model.stack import Stack, detect_xattr_ns
from .mounting.options import parse_option

# Options the editor offers, with the values each key cycles through (None: not given, the kernel's default).
OPTION_CYCLE: dict[str, tuple[str | None, ...]] = {
    "redirect_dir": (None, "on", "follow", "nofollow", "off"),
    "metacopy": (None, "on", "off"),
    "index": (None, "on", "off"),
    "userxattr": (None, ""),  # "": a flag
    "volatile": (None, ""),
}


@dataclass
class StackDraft:
    """``options``: the cycled options given (value "" for a flag); ``other_options``: the rest, kept as they
    are (model options such as oci-whiteouts); ``saved_rw``: upper and work kept while read-only."""

    original: Stack
    lowers: list[str] = field(default_factory=list)
    upper: str | None = None
    work: str | None = None
    options: dict[str, str | None] = field(default_factory=dict)
    other_options: list[str] = field(default_factory=list)
    saved_rw: tuple[str | None, str | None] | None = None

    @classmethod
    def of(cls, stack: Stack) -> StackDraft:
        draft = cls(stack, [la.path for la in stack.lowers], stack.upper.path if stack.upper else None, stack.work)
        for opt in stack.options:
            name, value = parse_option(opt)
            if name in OPTION_CYCLE:
                draft.options[name] = "" if value is None else value
            else:
                draft.other_options.append(opt)
        return draft

    def stack(self) -> Stack:
        """The edited stack (layers renumbered, data layers and other options kept)."""
        o = self.original
        opts = [*self.other_options]
        for name in OPTION_CYCLE:
            value = self.options.get(name)
            if value is not None:
                opts.append(name if value == "" else f"{name}={value}")
        s = o.relayered(self.lowers, self.upper, self.work if self.upper else None)
        s = replace(s, options=tuple(opts))
        if "userxattr" in self.options and self.options["userxattr"] is not None:
            return replace(s, xattr_ns="user")
        if "userxattr" in o.options:  # userxattr was switched off: detect from the layers again
            return replace(s, xattr_ns=detect_xattr_ns(replace(s, xattr_ns="trusted")))
        return s

    # ------------------------------------------------------------- edits
    def add_lower(self, at: int, path: str) -> str:
        self.lowers.insert(at, path)
        return f"added lower:{at}: {path}"

    def remove_lower(self, i: int) -> str:
        path = self.lowers.pop(i)
        return f"removed {path} from the stack (the dir is not touched)"

    def move(self, i: int, step: int) -> str | None:
        """Lower ``i`` one place up (-1) or down (1); None at either end."""
        j = i + step
        if not 0 <= j < len(self.lowers):
            return None
        self.lowers[i], self.lowers[j] = self.lowers[j], self.lowers[i]
        return f"moved {self.lowers[j]} to lower:{j}"

    def set_lower(self, i: int, path: str) -> str:
        self.lowers[i] = path
        return f"lower:{i} is now {path}"

    def set_upper(self, path: str) -> str:
        self.upper = path
        self.saved_rw = None
        if self.work is None:
            return f"the upper is {path}; now set the work dir (w): an empty dir on the same filesystem"
        return f"the upper is {path}"

    def set_work(self, path: str) -> str:
        self.work = path
        return f"the work dir is {path}"

    def unset_work(self) -> str:
        self.work = None
        return "the work dir is unset"

    def toggle_readonly(self) -> str:
        if self.upper is not None:
            self.saved_rw = (self.upper, self.work)
            self.upper, self.work = None, None
            return "read-only: no upper and work (r again brings them back)"
        if self.saved_rw is not None:
            self.upper, self.work = self.saved_rw
            self.saved_rw = None
            return "writable again: upper and work are back"
        return "no upper to bring back: set one with u"

    def cycle_option(self, name: str) -> str:
        cycle = OPTION_CYCLE[name]
        cur = self.options.get(name)
        nxt = cycle[(cycle.index(cur) + 1) % len(cycle)] if cur in cycle else cycle[0]
        if nxt is None:
            self.options.pop(name, None)
        else:
            self.options[name] = nxt
        return f"{name}: " + ("default (not given)" if nxt is None else ("on" if nxt == "" else nxt))
