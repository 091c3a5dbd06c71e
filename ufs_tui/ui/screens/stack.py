"""The stack editor: lowers (top first), upper, work, mount options and backend, checked as you edit.

Nothing is mounted or written by editing. Two actions write, each only after a confirmation that names
the dir: creating a missing dir (upper, work, a lower) and creating a new empty layer dir. Every edit
re-runs the one mount preflight (:func:`~ufs_tui.core.mount.preflight`, asked by the CLI too): a work dir on
another filesystem than the upper, an upper without work, overlapping layers, conflicting options...
are said here before the kernel says them (✗), and what would mount but then fail (⚠: renamed dirs
whose redirect the mount will not follow). Ctrl+S applies: the app shows the edited stack at once; while
mounted it remounts with the edited options and backend, and a stack with a ✗ is not applied then (the
mount stays as it is). Every key is listed in the editor itself (the footer is too narrow for them).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace

from rich.style import Style
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from ...core.display import printable
from ...core.errors import UfsError
from ...core.layers_ops import create_layer, fresh_sibling
from ...core.mount import BACKENDS, MountHandle, mount_options, preflight, resolve_backend, runtime_dir
from ...core.mount_errors import KNOWN_OPTIONS, Problem, mount_warnings, parse_option
from ...core.stack import Layer, Stack, detect_xattr_ns
from ..bindings import EDITOR_KEYS, key_display, screen_bindings
from ..widgets.keyed_list import KeyedOptionList
from .confirm import ConfirmScreen, PromptScreen, expand_path

# Options the editor offers, with the values each key cycles through (None: not given, the kernel's default).
OPTION_CYCLE: dict[str, tuple[str | None, ...]] = {
    "redirect_dir": (None, "on", "follow", "nofollow", "off"),
    "metacopy": (None, "on", "off"),
    "index": (None, "on", "off"),
    "userxattr": (None, ""),  # "": a flag
    "volatile": (None, ""),
}


@dataclass(frozen=True)
class EditResult:
    stack: Stack
    backend: str  # auto, kernel, userns, fuse


def mount_opts(stack: Stack) -> list[str]:
    """The stack's options that are overlay mount options (others, like oci-whiteouts, are for the model)."""
    return [o for o in stack.options if parse_option(o)[0] in KNOWN_OPTIONS]


def stack_problems(stack: Stack, backend: str, replacing: MountHandle | None = None) -> list[Problem]:
    """What mounting ``stack`` with ``backend`` would fail on: the one :func:`preflight`, with the stack's own
    mount options and this user's record (``replacing``: the app's own mount of the stack being edited)."""
    try:
        runtime: str | None = runtime_dir(create=False)
    except UfsError:
        runtime = None
    return preflight(stack, backend, mount_opts(stack), runtime, replacing)


# What each option the editor cycles does, in overlay terms (shown under the checks).
OPTION_HELP = {
    "redirect_dir": "on: renaming a lower dir makes an upper dir with a redirect xattr to it (else EXDEV); "
    "follow: follow redirects, make none; nofollow: refuse them (EPERM); off: make none",
    "metacopy": "on: chmod, chown and touch copy up the metadata only, the data stays below (needs redirect_dir=on)",
    "index": "on: a copied-up file is tied to its lower inode, so hard links stay one file (and NFS export works)",
    "userxattr": "user.overlay.* markers instead of trusted.overlay.*: what unprivileged mounts use",
    "volatile": "no syncs to the upper: faster, and the upper is lost on a crash (the work dir says so)",
}


def options_help() -> Text:
    t = Text("What the options do\n", style="bold")
    for name in OPTION_CYCLE:
        t.append(f"{name:<13}", style="bold")
        t.append(OPTION_HELP[name] + "\n")
    return t


UI_SCAN_LIMIT = 20_000  # dirs looked at for redirects on the UI's thread (the CLI looks at all of them)


def stack_warnings(stack: Stack, backend: str) -> list[Problem]:
    """What would mount but then fail (dirs whose redirect the mount will not follow: EPERM on lookup)."""
    try:
        resolved = resolve_backend(backend)
    except UfsError:
        return []
    return mount_warnings(stack, mount_options(stack, resolved, mount_opts(stack)), resolved, UI_SCAN_LIMIT)


def key_legend(width: int = 1000) -> Text:
    """Every editor key in a few words, from the one key table (the option keys 1-5 as one entry: the options
    line above names each), in lines of at most ``width`` cells broken only between keys."""
    items: list[tuple[str, str]] = []
    options = [k for k in EDITOR_KEYS if k.action.startswith("option(")]
    for k in EDITOR_KEYS:
        if k in options[1:]:
            continue
        if k is options[0]:
            items.append((f"{options[0].keys}-{options[-1].keys}", "Options"))
            continue
        items.append(((k.display or key_display(k.keys)).replace(" ", "/"), k.short or k.description))
    items.append(("?", "Help"))
    t = Text()
    used = 0
    for keys, word in items:
        size = len(keys) + 1 + len(word)
        if used and used + 2 + size > width:
            t.append("\n")
            used = 0
        elif used:
            t.append("  ")
            used += 2
        t.append(keys, style="bold")
        t.append(" " + word)
        used += size
    return t


def backend_words(backend: str) -> str:
    resolved = resolve_backend(backend) if backend in ("auto", *BACKENDS) else backend
    words = {
        "kernel": "kernel mount (root)",
        "userns": "user namespace: the mount is visible only inside it; the app reads it at /proc/PID/root/TARGET",
        "fuse": "fuse-overlayfs" + ("" if shutil.which("fuse-overlayfs") else " (not installed)"),
    }.get(resolved, resolved)
    return f"{backend} → {words}" if backend == "auto" else words


class StackEditor(Screen[EditResult | None]):
    """Edit a copy of the stack; dismissed with an :class:`EditResult` (Ctrl+S) or None (Esc)."""

    AUTO_FOCUS = "#stack-rows"
    BINDINGS = screen_bindings(EDITOR_KEYS)

    DEFAULT_CSS = """
    StackEditor #stack-keys {
        height: auto;
        dock: bottom;
        padding: 0 1;
        background: $panel;
    }
    """

    def __init__(
        self,
        stack: Stack,
        backend: str = "auto",
        mounted: str | None = None,
        handle: MountHandle | None = None,
        alias: Callable[[str], str] = str,
    ) -> None:
        super().__init__()
        self.alias = alias  # how the app shows paths (the demo's temp dir as $DEMO)
        self.original = stack
        self.lowers: list[str] = [layer.path for layer in stack.lowers]
        self.upper: str | None = stack.upper.path if stack.upper else None
        self.work: str | None = stack.work
        self.options: dict[str, str | None] = {}
        self.other_options: list[str] = []
        for opt in stack.options:
            name, value = parse_option(opt)
            if name in OPTION_CYCLE:
                self.options[name] = "" if value is None else value
            else:
                self.other_options.append(opt)
        self.backend = backend
        self.mounted = mounted
        self.handle = handle  # the app's mount of this stack (a remount replaces it)
        self._warned: dict[tuple[object, ...], list[Problem]] = {}  # stack_warnings by stack (they walk layers)
        self.warnings: list[Problem] = []
        self.saved_rw: tuple[str | None, str | None] | None = None  # upper/work kept while read-only
        self.messages: list[str] = []  # what the last action did (created X, ...)
        self.problems: list[Problem] = []

    # ------------------------------------------------------------------ view
    def compose(self) -> ComposeResult:
        with Vertical(id="editor"):
            yield Static("", id="stack-head")
            yield KeyedOptionList(id="stack-rows")
            yield Static("", id="stack-options")
            yield Static("", id="stack-problems")
            yield Static(options_help(), id="stack-help")
        yield Static(key_legend(), id="stack-keys")

    def on_resize(self, event: events.Resize) -> None:
        self.query_one("#stack-keys", Static).update(key_legend(event.size.width - 2))
        self.query_one("#stack-options", Static).update(self._options_text())

    def on_mount(self) -> None:
        self.query_one("#editor", Vertical).border_title = "Stack editor"
        self.query_one("#editor", Vertical).border_subtitle = "nothing is written until you confirm · Esc: leave"
        self.refresh_view(0)

    def stack(self) -> Stack:
        """The edited stack (layers renumbered, data layers and other options kept)."""
        o = self.original
        lowers = tuple(Layer(p, "lower", i) for i, p in enumerate(self.lowers))
        data = tuple(Layer(la.path, "data", len(lowers) + i, la.label, la.fs) for i, la in enumerate(o.data_layers))
        opts = [*self.other_options]
        for name in OPTION_CYCLE:
            value = self.options.get(name)
            if value is not None:
                opts.append(name if value == "" else f"{name}={value}")
        upper = Layer(self.upper, "upper", -1) if self.upper else None
        s = replace(o, lowers=lowers, upper=upper, work=self.work if upper else None, data_layers=data)
        s = replace(s, options=tuple(opts))
        if "userxattr" in self.options and self.options["userxattr"] is not None:
            return replace(s, xattr_ns="user")
        if "userxattr" in o.options:  # userxattr was switched off: detect from the layers again
            return replace(s, xattr_ns=detect_xattr_ns(replace(s, xattr_ns="trusted")))
        return s

    def rows(self) -> list[tuple[str, Text]]:
        out: list[tuple[str, Text]] = []
        for i, path in enumerate(self.lowers):
            out.append((f"lower:{i}", self._row(f"lower:{i}", path, "top" if i == 0 else "")))
        for layer in self.original.data_layers:
            out.append((f"data:{layer.index}", self._row(layer.name, layer.path, "data-only (not editable here)")))
        out.append(("upper", self._row("upper", self.upper, "" if self.upper else "none: a read-only stack")))
        out.append(("work", self._row("work", self.work if self.upper else None, "" if self.upper else "not needed")))
        return out

    def _row(self, name: str, path: str | None, note: str) -> Text:
        t = Text(f"{name:<9}", style=Style(bold=True))
        if path is not None:
            t.append(printable(self.alias(path)))
            if not os.path.isdir(path):
                t.append("  ")
                t.append("(missing)", style="bold red")
        if note:
            t.append("  ")
            t.append(f"({note})", style="dim italic")
        return t

    def refresh_view(self, highlight: int | str | None = None) -> None:
        rows = self.query_one("#stack-rows", OptionList)
        old = rows.highlighted
        rows.clear_options()
        entries = self.rows()
        rows.add_options([Option(text, id=rid) for rid, text in entries])
        ids = [rid for rid, _ in entries]
        if isinstance(highlight, str) and highlight in ids:
            rows.highlighted = ids.index(highlight)
        elif isinstance(highlight, int):
            rows.highlighted = max(0, min(highlight, len(ids) - 1))
        elif old is not None:
            rows.highlighted = min(old, len(ids) - 1)
        head = Text("Lowers top first, then the upper and the work dir. ", style="bold")
        head.append("Mounted now: applying remounts." if self.mounted else "Not mounted.", style="dim")
        self.query_one("#stack-head", Static).update(head)
        self.query_one("#stack-options", Static).update(self._options_text())
        stack = self.stack()
        self.problems = stack_problems(stack, self.backend, self.handle)
        key = (tuple(la.path for la in stack.all_layers), stack.upper, stack.xattr_ns, stack.options, self.backend)
        if key not in self._warned:
            self._warned[key] = stack_warnings(stack, self.backend)
        self.warnings = self._warned[key]
        self.query_one("#stack-problems", Static).update(self._problems_text())

    def _options_text(self) -> Text:
        t = Text("Options: ", style="bold")
        width = max(40, self.app.size.width - 6)  # inside the editor's border and padding
        used = len("Options: ")
        for i, name in enumerate(OPTION_CYCLE, 1):
            value = self.options.get(name)
            shown = "default" if value is None else ("on" if value == "" else value)
            size = len(f"{i} {name}={shown}")
            if i > 1 and used + 3 + size > width:  # break between options, never inside one
                t.append("\n" + " " * len("Options: "))
                used = len("Options: ")
            elif i > 1:
                t.append("   ")
                used += 3
            t.append(f"{i}", style="bold")
            t.append(" ")
            t.append(f"{name}=", style="dim" if value is None else "")
            t.append(shown, style="dim" if value is None else "bold green")
            used += size
        t.append("\n")
        t.append("Read-only:", style="bold")
        t.append(" yes (no upper)" if self.upper is None else " no")
        t.append("  ·  ")
        t.append("Backend:", style="bold")
        t.append(" " + printable(backend_words(self.backend)))
        for opt in self.other_options:
            t.append("  ·  ")
            t.append(f"model option: {printable(opt)}", style="dim")
        return t

    def _problems_text(self) -> Text:
        lines: list[Text] = []
        for msg in self.messages:
            lines.append(Text(printable(msg), style="italic"))
        if not self.problems:
            lines.append(Text("✓ checks pass: the kernel should accept this stack", style="green"))
        for p in self.warnings:
            line = Text("⚠ ", style="bold yellow")
            line.append(printable(p.subject), style="bold")
            line.append(": " + printable(p.what))
            line.append(f"\n    fix: {printable(p.fix)}", style="dim")
            lines.append(line)
        for p in self.problems:
            line = Text("✗ ", style="bold red")
            line.append(printable(p.subject), style="bold")
            line.append(": " + printable(p.what))
            line.append(f"\n    fix: {printable(p.fix)}", style="dim")
            lines.append(line)
        return Text("\n").join(lines)

    def say(self, *messages: str) -> None:
        self.messages = list(messages)

    # ------------------------------------------------------------------ selection
    def selected(self) -> str | None:
        rows = self.query_one("#stack-rows", OptionList)
        if rows.highlighted is None:
            return None
        return rows.get_option_at_index(rows.highlighted).id

    def selected_lower(self) -> int | None:
        rid = self.selected()
        if rid and rid.startswith("lower:"):
            return int(rid.split(":", 1)[1])
        return None

    # ------------------------------------------------------------------ asking for paths
    def ask_dir(self, title: str, lines: list[str], value: str, then: Callable[[str], None]) -> None:
        """Prompt for a dir; a missing one is created after a confirmation that names it."""

        def got(text: str | None) -> None:
            if text is None or not text.strip():
                return
            path = expand_path(text)
            if os.path.isdir(path):
                then(os.path.realpath(path))
                return
            if os.path.lexists(path):
                self.say(f"{path}: not a directory")
                self.refresh_view()
                return

            def create(yes: bool | None) -> None:
                if not yes:
                    self.say(f"{path}: not created; nothing changed")
                    self.refresh_view()
                    return
                try:
                    os.makedirs(path, 0o755)
                except OSError as e:
                    self.say(f"{path}: cannot create it: {e.strerror}")
                    self.refresh_view()
                    return
                self.say(f"created the empty dir {path}")
                then(os.path.realpath(path))

            self.app.push_screen(
                ConfirmScreen(
                    "Create a missing dir?",
                    [f"{path} does not exist.", f"Create it (an empty dir, mode 755): {path}", "Nothing else."],
                    "y: create it",
                ),
                create,
            )

        self.app.push_screen(PromptScreen(title, lines, value), got)

    def _near(self) -> str:
        """A dir to start typing from: next to the top lower (or the upper)."""
        base = self.lowers[0] if self.lowers else (self.upper or os.getcwd())
        return os.path.dirname(base.rstrip("/")) + "/"

    # ------------------------------------------------------------------ actions
    def action_add_lower(self) -> None:
        at = self.selected_lower() or 0

        def add(path: str) -> None:
            self.lowers.insert(at, path)
            self.say(f"added lower:{at}: {path}")
            self.refresh_view(f"lower:{at}")

        self.ask_dir("Add a lower layer", [f"It goes in as lower:{at} (above the selected one)."], self._near(), add)

    def action_new_layer(self) -> None:
        at = self.selected_lower() or 0
        suggestion = fresh_sibling(os.path.join(self._near(), "layer"))

        def got(text: str | None) -> None:
            if text is None or not text.strip():
                return
            path = expand_path(text)

            def create(yes: bool | None) -> None:
                if not yes:
                    return
                try:
                    real = create_layer(path)
                except Exception as e:  # noqa: BLE001 - UfsError or OSError: say it, change nothing
                    self.say(f"not created: {e}")
                    self.refresh_view()
                    return
                self.lowers.insert(at, real)
                self.say(f"created the empty layer dir {real} as lower:{at}")
                self.refresh_view(f"lower:{at}")

            self.app.push_screen(
                ConfirmScreen(
                    "Create a new empty layer dir?",
                    [f"Will create the empty dir: {path}", f"It goes in as lower:{at}. Nothing else is written."],
                    "y: create it",
                ),
                create,
            )

        self.app.push_screen(PromptScreen("New empty layer dir", ["A dir that does not exist yet."], suggestion), got)

    def action_remove(self) -> None:
        rid = self.selected()
        i = self.selected_lower()
        if i is not None:
            path = self.lowers.pop(i)
            self.say(f"removed {path} from the stack (the dir is not touched)")
            self.refresh_view(min(i, max(0, len(self.lowers) - 1)))
        elif rid == "upper" and self.upper is not None:
            self.action_toggle_readonly()
        elif rid == "work" and self.work is not None:
            self.work = None
            self.say("the work dir is unset")
            self.refresh_view("work")

    def action_move(self, step: int) -> None:
        i = self.selected_lower()
        if i is None:
            return
        j = i + step
        if not 0 <= j < len(self.lowers):
            return
        self.lowers[i], self.lowers[j] = self.lowers[j], self.lowers[i]
        self.say(f"moved {self.lowers[j]} to lower:{j}")
        self.refresh_view(f"lower:{j}")

    def action_edit_row(self) -> None:
        rid = self.selected()
        i = self.selected_lower()
        if i is not None:

            def put(path: str) -> None:
                self.lowers[i] = path
                self.say(f"lower:{i} is now {path}")
                self.refresh_view(f"lower:{i}")

            self.ask_dir(f"Change lower:{i}", [], self.lowers[i], put)
        elif rid == "upper":
            self.action_set_upper()
        elif rid == "work":
            self.action_set_work()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_edit_row()

    def action_set_upper(self) -> None:
        def put(path: str) -> None:
            self.upper = path
            self.saved_rw = None
            if self.work is None:
                self.say(f"the upper is {path}; now set the work dir (w): an empty dir on the same filesystem")
            else:
                self.say(f"the upper is {path}")
            self.refresh_view("upper")

        start = self.upper or self._near()
        self.ask_dir("Set the upper (writable) layer", ["Writes through the mount go here."], start, put)

    def action_set_work(self) -> None:
        if self.upper is None:
            self.say("a read-only stack has no work dir: set the upper first (u)")
            self.refresh_view()
            return

        def put(path: str) -> None:
            self.work = path
            self.say(f"the work dir is {path}")
            self.refresh_view("work")

        start = self.work or os.path.join(os.path.dirname(self.upper.rstrip("/")), "work")
        lines = ["An empty dir on the same filesystem as the upper, not inside it (the kernel uses it for renames)."]
        self.ask_dir("Set the work dir", lines, start, put)

    def action_toggle_readonly(self) -> None:
        if self.upper is not None:
            self.saved_rw = (self.upper, self.work)
            self.upper, self.work = None, None
            self.say("read-only: no upper and work (r again brings them back)")
        elif self.saved_rw is not None:
            self.upper, self.work = self.saved_rw
            self.saved_rw = None
            self.say("writable again: upper and work are back")
        else:
            self.say("no upper to bring back: set one with u")
        self.refresh_view()

    def action_option(self, name: str) -> None:
        cycle = OPTION_CYCLE[name]
        cur = self.options.get(name)
        nxt = cycle[(cycle.index(cur) + 1) % len(cycle)] if cur in cycle else cycle[0]
        if nxt is None:
            self.options.pop(name, None)
        else:
            self.options[name] = nxt
        self.say(f"{name}: " + ("default (not given)" if nxt is None else ("on" if nxt == "" else nxt)))
        self.refresh_view()

    def action_backend(self) -> None:
        order = ("auto", *BACKENDS)
        self.backend = order[(order.index(self.backend) + 1) % len(order)] if self.backend in order else "auto"
        self.say(f"backend: {backend_words(self.backend)}")
        self.refresh_view()

    def action_apply(self) -> None:
        if self.mounted and self.problems:
            self.say(
                f"not applied: the edited stack would not mount (✗ below), and applying remounts {self.mounted}; "
                "the mount is left as it is. Fix the problems, or Esc to leave."
            )
            self.refresh_view()
            return
        self.dismiss(EditResult(self.stack(), self.backend))

    def action_cancel(self) -> None:
        self.dismiss(None)
