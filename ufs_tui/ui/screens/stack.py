"""The stack editor: lowers (top first), upper, work, mount options and backend, checked as you edit.

Nothing is mounted or written by editing. Two actions write, each only after a confirmation that names
the dir: creating a missing dir (upper, work, a lower) and creating a new empty layer dir. Every edit
re-runs the one mount preflight (:func:`~ufs_tui.core.mounting.mount.preflight`, asked by the CLI too): a work dir on
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
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from ...core.model.display import printable
from ...core.model.errors import UfsError
from ...core.model.stack import Stack
from ...core.mounting.layers_ops import create_layer, fresh_sibling
from ...core.mounting.mount import BACKENDS, preflight, resolve_backend
from ...core.mounting.options import KNOWN_OPTIONS, mount_options, parse_option
from ...core.mounting.preflight import Problem, mount_warnings
from ...core.mounting.record import MountHandle, runtime_dir
from ...core.stack_edit import OPTION_CYCLE, StackDraft
from ..bindings import EDITOR_KEYS, key_display, screen_bindings
from ..keymap import with_ids
from ..widgets.keyed_list import KeyedOptionList
from .confirm import ConfirmScreen, PromptScreen, expand_path


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


def layer_row(name: str, path: str | None, note: str, alias: Callable[[str], str]) -> Text:
    """One row of the editor's list: the layer's name, its path (or none), a note."""
    t = Text(f"{name:<9}", style=Style(bold=True))
    if path is not None:
        t.append(printable(alias(path)))
        if not os.path.isdir(path):
            t.append("  ")
            t.append("(missing)", style="bold red")
    if note:
        t.append("  ")
        t.append(f"({note})", style="dim italic")
    return t


def draft_rows(draft: StackDraft, alias: Callable[[str], str]) -> list[tuple[str, Text]]:
    """(row id, row) for every layer of the draft: lowers top first, data layers, upper, work."""
    out: list[tuple[str, Text]] = []
    for i, path in enumerate(draft.lowers):
        out.append((f"lower:{i}", layer_row(f"lower:{i}", path, "top" if i == 0 else "", alias)))
    for layer in draft.original.data_layers:
        out.append((f"data:{layer.index}", layer_row(layer.name, layer.path, "data-only (not editable here)", alias)))
    upper, work = draft.upper, draft.work if draft.upper else None
    out.append(("upper", layer_row("upper", upper, "" if upper else "none: a read-only stack", alias)))
    out.append(("work", layer_row("work", work, "" if draft.upper else "not needed", alias)))
    return out


def options_text(draft: StackDraft, backend: str, width: int) -> Text:
    """The options line(s), broken between options (never inside one) at ``width``; read-only, backend."""
    t = Text("Options: ", style="bold")
    used = len("Options: ")
    for i, name in enumerate(OPTION_CYCLE, 1):
        value = draft.options.get(name)
        shown = "default" if value is None else ("on" if value == "" else value)
        size = len(f"{i} {name}={shown}")
        if i > 1 and used + 3 + size > width:
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
    t.append(" yes (no upper)" if draft.upper is None else " no")
    t.append("  ·  ")
    t.append("Backend:", style="bold")
    t.append(" " + printable(backend_words(backend)))
    for opt in draft.other_options:
        t.append("  ·  ")
        t.append(f"model option: {printable(opt)}", style="dim")
    return t


def checks_text(messages: list[str], warnings: list[Problem], problems: list[Problem]) -> Text:
    """What the last action did, then the checks: ✓ all pass, ⚠ would mount but fail, ✗ would not mount."""
    lines: list[Text] = [Text(printable(msg), style="italic") for msg in messages]
    if not problems:
        lines.append(Text("✓ checks pass: the kernel should accept this stack", style="green"))
    for mark, style, found in (("⚠ ", "bold yellow", warnings), ("✗ ", "bold red", problems)):
        for p in found:
            line = Text(mark, style=style)
            line.append(printable(p.subject), style="bold")
            line.append(": " + printable(p.what))
            line.append(f"\n    fix: {printable(p.fix)}", style="dim")
            lines.append(line)
    return Text("\n").join(lines)


class StackEditor(Screen[EditResult | None]):
    """Edit a copy of the stack (a :class:`StackDraft`); dismissed with an :class:`EditResult` (Ctrl+S) or None
    (Esc)."""

    AUTO_FOCUS = "#stack-rows"
    BINDINGS = with_ids(screen_bindings(EDITOR_KEYS), "editor")

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
        self.draft = StackDraft.of(stack)
        self.backend = backend
        self.mounted = mounted
        self.handle = handle  # the app's mount of this stack (a remount replaces it)
        self._warned: dict[tuple[object, ...], list[Problem]] = {}  # stack_warnings by stack (they walk layers)
        self.warnings: list[Problem] = []
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
        """The edited stack."""
        return self.draft.stack()

    def _options_text(self) -> Text:
        return options_text(self.draft, self.backend, max(40, self.app.size.width - 6))  # inside border, padding

    def refresh_view(self, highlight: int | str | None = None) -> None:
        rows = self.query_one("#stack-rows", OptionList)
        old = rows.highlighted
        rows.clear_options()
        entries = draft_rows(self.draft, self.alias)
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
        self.query_one("#stack-problems", Static).update(checks_text(self.messages, self.warnings, self.problems))

    def say(self, *messages: str) -> None:
        self.messages = list(messages)

    def did(self, message: str, highlight: int | str | None = None) -> None:
        """Say what an edit did and show the draft again."""
        self.say(message)
        self.refresh_view(highlight)

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
            elif os.path.lexists(path):
                self.did(f"{path}: not a directory")
            else:
                self._create_dir(path, then)

        self.app.push_screen(PromptScreen(title, lines, value), got)

    def _create_dir(self, path: str, then: Callable[[str], None]) -> None:
        def create(yes: bool | None) -> None:
            if not yes:
                self.did(f"{path}: not created; nothing changed")
                return
            try:
                os.makedirs(path, 0o755)
            except OSError as e:
                self.did(f"{path}: cannot create it: {e.strerror}")
                return
            self.say(f"created the empty dir {path}")
            then(os.path.realpath(path))

        lines = [f"{path} does not exist.", f"Create it (an empty dir, mode 755): {path}", "Nothing else."]
        self.app.push_screen(ConfirmScreen("Create a missing dir?", lines, "y: create it"), create)

    def _near(self) -> str:
        """A dir to start typing from: next to the top lower (or the upper)."""
        d = self.draft
        base = d.lowers[0] if d.lowers else (d.upper or os.getcwd())
        return os.path.dirname(base.rstrip("/")) + "/"

    # ------------------------------------------------------------------ actions
    def action_add_lower(self) -> None:
        at = self.selected_lower() or 0
        lines = [f"It goes in as lower:{at} (above the selected one)."]
        self.ask_dir(
            "Add a lower layer", lines, self._near(), lambda p: self.did(self.draft.add_lower(at, p), f"lower:{at}")
        )

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
                    self.did(f"not created: {e}")
                    return
                self.draft.add_lower(at, real)
                self.did(f"created the empty layer dir {real} as lower:{at}", f"lower:{at}")

            lines = [f"Will create the empty dir: {path}", f"It goes in as lower:{at}. Nothing else is written."]
            self.app.push_screen(ConfirmScreen("Create a new empty layer dir?", lines, "y: create it"), create)

        self.app.push_screen(PromptScreen("New empty layer dir", ["A dir that does not exist yet."], suggestion), got)

    def action_remove(self) -> None:
        rid = self.selected()
        i = self.selected_lower()
        if i is not None:
            said = self.draft.remove_lower(i)
            self.did(said, min(i, max(0, len(self.draft.lowers) - 1)))
        elif rid == "upper" and self.draft.upper is not None:
            self.action_toggle_readonly()
        elif rid == "work" and self.draft.work is not None:
            self.did(self.draft.unset_work(), "work")

    def action_move(self, step: int) -> None:
        i = self.selected_lower()
        said = self.draft.move(i, step) if i is not None else None
        if i is not None and said is not None:
            self.did(said, f"lower:{i + step}")

    def action_edit_row(self) -> None:
        rid = self.selected()
        i = self.selected_lower()
        if i is not None:

            def put(path: str) -> None:
                self.did(self.draft.set_lower(i, path), f"lower:{i}")

            self.ask_dir(f"Change lower:{i}", [], self.draft.lowers[i], put)
        elif rid == "upper":
            self.action_set_upper()
        elif rid == "work":
            self.action_set_work()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_edit_row()

    def action_set_upper(self) -> None:
        d = self.draft
        lines = ["Writes through the mount go here."]
        self.ask_dir(
            "Set the upper (writable) layer",
            lines,
            d.upper or self._near(),
            lambda p: self.did(d.set_upper(p), "upper"),
        )

    def action_set_work(self) -> None:
        d = self.draft
        if d.upper is None:
            self.did("a read-only stack has no work dir: set the upper first (u)")
            return
        start = d.work or os.path.join(os.path.dirname(d.upper.rstrip("/")), "work")
        lines = ["An empty dir on the same filesystem as the upper, not inside it (the kernel uses it for renames)."]
        self.ask_dir("Set the work dir", lines, start, lambda p: self.did(d.set_work(p), "work"))

    def action_toggle_readonly(self) -> None:
        self.did(self.draft.toggle_readonly())

    def action_option(self, name: str) -> None:
        self.did(self.draft.cycle_option(name))

    def action_backend(self) -> None:
        order = ("auto", *BACKENDS)
        self.backend = order[(order.index(self.backend) + 1) % len(order)] if self.backend in order else "auto"
        self.did(f"backend: {backend_words(self.backend)}")

    def action_apply(self) -> None:
        if self.mounted and self.problems:
            self.did(
                f"not applied: the edited stack would not mount (✗ below), and applying remounts {self.mounted}; "
                "the mount is left as it is. Fix the problems, or Esc to leave."
            )
            return
        self.dismiss(EditResult(self.stack(), self.backend))

    def action_cancel(self) -> None:
        self.dismiss(None)
