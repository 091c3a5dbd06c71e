"""Small dialogs: a yes/no confirmation that says exactly what will be written, a one-line prompt with
directory completion, forms (squash, commit), and a message box for problems.

Every text shown comes from the caller as plain strings: nothing here is Rich markup, so paths with
``[red]`` or escape sequences show literally (through :func:`printable`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Input, Static

from ...core.model.display import printable
from ..bindings import DIALOG_KEYS, screen_bindings
from ..keymap import with_ids


def lines_text(lines: Sequence[str], style: str = "") -> Text:
    return Text("\n").join(Text(printable(line), style=style) for line in lines)


class DirSuggester(Suggester):
    """Completes the last path component to the first matching directory name (→ or End accepts it)."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        return complete_dir(value)


def complete_dir(value: str) -> str | None:
    """``/us`` → ``/usr/``; ``~/Do`` → ``~/Documents/``; None when no directory matches."""
    if not value:
        return None
    parent, prefix = os.path.split(value)
    real_parent = os.path.expanduser(parent or ".")
    try:
        with os.scandir(real_parent) as it:
            names = sorted(e.name for e in it if e.name.startswith(prefix) and _is_dir(e))
    except OSError:
        return None
    if not prefix:
        names = [n for n in names if not n.startswith(".")]
    for name in names:
        if name != prefix:
            return os.path.join(parent, name) + "/"
    return None


def _is_dir(e: os.DirEntry[str]) -> bool:
    try:
        return e.is_dir()
    except OSError:
        return False


def expand_path(value: str) -> str:
    """What the user typed, as an absolute path (``~`` expanded, symlinks kept)."""
    return os.path.abspath(os.path.expanduser(value.strip()))


class ConfirmScreen(ModalScreen[bool]):
    """Dismissed with True (y / Enter) or False (n / Esc). ``lines`` say what will happen, in full."""

    AUTO_FOCUS = "#confirm"
    BINDINGS = with_ids(screen_bindings(DIALOG_KEYS), "dialog")

    def __init__(self, title: str, lines: Sequence[str], yes: str = "y: yes, do it", warn: bool = False) -> None:
        super().__init__()
        self.title_text = title
        self.lines = list(lines)
        self.yes = yes
        self.warn = warn

    def compose(self) -> ComposeResult:
        box = Vertical(id="confirm", classes="dialog")
        box.can_focus = True
        box.border_title = self.title_text
        box.border_subtitle = f"{self.yes} · n / Esc: no"
        with box:
            yield Static(lines_text(self.lines, "bold" if self.warn else ""), id="confirm-lines")

    def action_yes(self) -> None:
        self.dismiss(True)

    def action_no(self) -> None:
        self.dismiss(False)


class MessageScreen(ModalScreen[None]):
    """A plain message (e.g. why a mount cannot work and how to fix it); Enter or Esc closes it."""

    AUTO_FOCUS = "#message"
    BINDINGS = with_ids(screen_bindings(DIALOG_KEYS), "dialog")

    def __init__(self, title: str, lines: Sequence[str]) -> None:
        super().__init__()
        self.title_text = title
        self.lines = list(lines)

    def compose(self) -> ComposeResult:
        box = Vertical(id="message", classes="dialog")
        box.can_focus = True
        box.border_title = self.title_text
        box.border_subtitle = "Enter / Esc: close"
        with box:
            yield Static(lines_text(self.lines), id="message-lines")

    def action_no(self) -> None:
        self.dismiss(None)

    def action_yes(self) -> None:
        self.dismiss(None)


class PromptScreen(ModalScreen[str | None]):
    """One line of input; Enter gives it (maybe empty), Esc gives None. Directory names complete (→ accepts)."""

    AUTO_FOCUS = "#prompt-input"
    # Enter also when the input has not got the focus yet (a key typed right after the prompt opened).
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="prompt.cancel"),
        Binding("enter", "submit", "OK", show=False, id="prompt.submit"),
    ]

    def __init__(
        self, title: str, lines: Sequence[str], value: str = "", placeholder: str = "", paths: bool = True
    ) -> None:
        super().__init__()
        self.title_text = title
        self.lines = list(lines)
        self.value = value
        self.placeholder = placeholder
        self.paths = paths

    def compose(self) -> ComposeResult:
        box = Vertical(id="prompt", classes="dialog")
        box.border_title = self.title_text
        box.border_subtitle = "Enter: ok · → completes a dir name · Esc: cancel"
        with box:
            if self.lines:
                yield Static(lines_text(self.lines), id="prompt-lines")
            yield Input(
                self.value,
                placeholder=self.placeholder,
                suggester=DirSuggester() if self.paths else None,
                id="prompt-input",
            )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_submit(self) -> None:
        self.dismiss(self.query_one("#prompt-input", Input).value)

    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True)
class Field:
    """One input of a :class:`FormScreen`: its label, first value, id and whether dir names complete."""

    label: str
    value: str
    id: str
    placeholder: str = ""
    paths: bool = True


class FormScreen(ModalScreen[tuple[str, ...] | None]):
    """Lines that say what will happen, then inputs; Enter moves to the next input and, on the last, gives
    every value (stripped); Esc gives None."""

    AUTO_FOCUS = "Input"  # the first one
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="form.cancel")]

    def __init__(self, title: str, lines: Sequence[str], fields: Sequence[Field]) -> None:
        super().__init__()
        self.title_text = title
        self.lines = list(lines)
        self.fields = list(fields)

    def compose(self) -> ComposeResult:
        box = Vertical(classes="dialog form")
        box.border_title = self.title_text
        box.border_subtitle = "Enter: next / ok · → completes a dir name · Esc: cancel"
        with box:
            yield Static(lines_text(self.lines))
            for f in self.fields:
                yield Static(Text(f.label, style="bold"))
                yield Input(f.value, placeholder=f.placeholder, suggester=DirSuggester() if f.paths else None, id=f.id)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        ids = [f.id for f in self.fields]
        i = ids.index(event.input.id or "")
        if i + 1 < len(ids):
            self.query_one(f"#{ids[i + 1]}", Input).focus()
            return
        self.dismiss(tuple(self.query_one(f"#{n}", Input).value.strip() for n in ids))

    def action_cancel(self) -> None:
        self.dismiss(None)


class SquashScreen(FormScreen):
    """The squash form: the range (``lower:I..lower:J``) and the new dir."""

    def __init__(self, lines: Sequence[str], rng: str, dest: str, dest_note: str = "") -> None:
        fields = [
            Field("layers (top..bottom, inclusive):", rng, "squash-range", "lower:0..lower:1", paths=False),
            Field(f"new layer dir (must not exist; nothing else is written){dest_note}:", dest, "squash-dest"),
        ]
        super().__init__("Squash adjacent lowers into one new layer", lines, fields)


class CommitScreen(FormScreen):
    """The commit form: the new empty upper and work dir (both must not exist yet)."""

    def __init__(self, lines: Sequence[str], upper: str, work: str) -> None:
        fields = [
            Field("new empty upper (must not exist):", upper, "commit-upper"),
            Field("new empty work dir (must not exist; on the same filesystem as the upper):", work, "commit-work"),
        ]
        super().__init__("Commit the upper: where the new upper goes", lines, fields)
