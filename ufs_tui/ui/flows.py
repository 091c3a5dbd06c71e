"""Writing from the explorer: mount, unmount, remount (the stack editor's apply), commit and squash.

Each flow asks first in dialogs that name what will be written, then runs in a thread worker (group
``mount``) that posts one :class:`FlowOutcome` to the explorer screen; the screen hands it to
:meth:`Flows.outcome` on the event loop. What the app mounted is kept in :class:`MountState`, which the
App owns: its lifecycle unmounts everything on exit, SIGTERM, SIGHUP and a lost terminal.
"""

from __future__ import annotations

import atexit
import contextlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from textual.message import Message

from ..core.model.errors import UfsError
from ..core.model.stack import Stack
from ..core.mounting.layers_ops import (
    NeedsDestination,
    Plan,
    commit,
    commit_remount,
    fresh_sibling,
    plan_commit,
    plan_squash,
)
from ..core.mounting.layers_ops import squash as squash_layers
from ..core.mounting.mount import MountManager, RemountError, resolve_backend, target_problem, unmount_busy
from ..core.mounting.options import mount_options
from ..core.mounting.preflight import ENGINE_STORAGE, NOT_EMPTY, MountError, Problem, one_line
from ..core.mounting.record import MountHandle
from ..core.sources.engines import engine_storage
from .messages import post
from .screens.confirm import CommitScreen, ConfirmScreen, MessageScreen, PromptScreen, SquashScreen, expand_path
from .screens.stack import EditResult, StackEditor, mount_opts, stack_problems, stack_warnings

if TYPE_CHECKING:
    from .screens.explorer import ExplorerScreen

UNMOUNT_TRIES = 10  # a busy mount is retried for about a second before it is reported


@dataclass
class MountState:
    """What the app mounted, and how ``m`` mounts (``backend``: auto, kernel, userns, fuse)."""

    backend: str = "auto"
    manager: MountManager | None = None  # made on the first mount; unmounts everything on exit
    handle: MountHandle | None = None  # the app's mount, while mounted
    busy: str = ""  # "mounting", "unmounting", ... while a mount worker runs

    def ours(self, stack: Stack) -> MountHandle | None:
        """The app's mount of this very stack, or None: the one answer to "is this our mount of this stack"."""
        h = self.handle
        return h if h is not None and h.stack == stack else None

    def ensure_manager(self) -> MountManager:
        if self.manager is None:
            self.manager = MountManager()
            atexit.register(self.cleanup)
        return self.manager

    def cleanup(self) -> None:
        """Unmount everything the app mounted (safe to call twice)."""
        manager = self.manager
        if manager is None:
            return
        problems = manager.unmount_all()
        self.handle = None
        for p in problems:
            with contextlib.suppress(OSError, ValueError):  # stderr may be a terminal that is gone
                print(f"ufs-tui: warning: could not unmount {p}", file=sys.stderr)


class FlowOutcome(Message, bubble=False):
    """What a flow's worker did (posted to the explorer screen; :meth:`Flows.outcome` takes it)."""


class Mounted(FlowOutcome, bubble=False):
    def __init__(self, handle: MountHandle, note: str = "") -> None:
        super().__init__()
        self.handle = handle
        self.note = note  # said after "Mounted" (a squash's result)


class Failed(FlowOutcome, bubble=False):
    def __init__(self, title: str, error: BaseException) -> None:
        super().__init__()
        self.title = title
        self.error = error


class Unmounted(FlowOutcome, bubble=False):
    def __init__(self, handle: MountHandle, error: BaseException | None = None) -> None:
        super().__init__()
        self.handle = handle
        self.error = error  # set: it could not be unmounted (it is still mounted)


class RemountFailed(FlowOutcome, bubble=False):
    def __init__(self, handle: MountHandle, error: BaseException) -> None:
        super().__init__()
        self.handle = handle
        self.error = error


class Continue(FlowOutcome, bubble=False):
    """A worker's result, handed to ``then`` on the event loop (the next step of a flow: a dialog, a note)."""

    def __init__(self, then: Callable[[], None]) -> None:
        super().__init__()
        self.then = then


class Changed(FlowOutcome, bubble=False):
    """A commit or squash made a new stack (nothing was mounted)."""

    def __init__(self, stack: Stack, note: str) -> None:
        super().__init__()
        self.stack = stack
        self.note = note


class Flows:
    """The outcomes and the dialogs that say what failed, shared by :class:`MountFlows` and :class:`LayerFlows`."""

    def __init__(self, screen: ExplorerScreen, state: MountState) -> None:
        self.screen = screen
        self.state = state

    def run(self, work: Callable[[], FlowOutcome]) -> None:
        """``work`` in a thread worker; its outcome is posted to the screen (nothing once the app has closed:
        the App's cleanup undoes what was mounted)."""
        screen = self.screen

        def job() -> None:
            post(screen, work())

        screen.run_worker(job, thread=True, group="mount", exit_on_error=False)

    def start_busy(self, what: str) -> bool:
        if self.state.busy:
            self.screen.notify(f"wait: {self.state.busy}", severity="warning")
            return False
        self.state.busy = what
        self.screen.update_status()
        return True

    def show_error(self, title: str, problems: Sequence[Problem] | None = None, text: str = "") -> None:
        """A plain message: what is wrong and how to fix it (nothing changed)."""
        lines: list[str] = []
        for p in problems or ():
            lines += [f"{p.subject}: {p.what}", f"  fix: {p.fix}"]
        if text:
            lines.append(text)
        lines.append("Nothing was changed.")
        self.screen.last_error = "\n".join(lines)
        self.screen.app.push_screen(MessageScreen(title, lines))

    def failed(self, title: str, err: BaseException, outcome: str = "") -> None:
        """A failure as a dialog: what is wrong, how to fix it, and (``outcome``) what is mounted now; without
        an outcome the dialog says nothing was changed."""
        self.state.busy = ""
        problems = err.problems if isinstance(err, MountError) else []
        said = ""
        if isinstance(err, MountError) and err.detail:
            said = f"{err.source}: {one_line(err.detail)}"
        elif not isinstance(err, MountError):
            said = str(err)
        if not outcome:
            self.show_error(title, problems, said)
        else:
            lines: list[str] = []
            for p in problems:
                lines += [f"{p.subject}: {p.what}", f"  fix: {p.fix}"]
            lines += [said] if said else []
            lines.append(outcome)
            self.screen.last_error = "\n".join(lines)
            self.screen.app.push_screen(MessageScreen(title, lines))
        self.screen.update_status()

    # ------------------------------------------------------------- outcomes
    def outcome(self, m: FlowOutcome) -> None:
        if isinstance(m, Mounted):
            self._mounted(m.handle, m.note)
        elif isinstance(m, Failed):
            self.failed(m.title, m.error)
        elif isinstance(m, Unmounted):
            self._unmounted(m.handle, m.error)
        elif isinstance(m, RemountFailed):
            self._remount_failed(m.handle, m.error)
        elif isinstance(m, Continue):
            m.then()
        elif isinstance(m, Changed):
            self.state.busy = ""
            self.screen.set_stack(m.stack)
            self.screen.notify(m.note, markup=False)

    def _mounted(self, handle: MountHandle, note: str) -> None:
        self.state.busy = ""
        self.state.handle = handle
        self.screen.set_stack(handle.stack)
        self.screen.notify(handle.note, title="Mounted", markup=False)
        for w in handle.warnings:  # what will not work as hoped, and what the kernel logged
            self.screen.notify(w, title="Mounted, but", severity="warning", markup=False, timeout=15)
        if note:
            self.screen.notify(note)

    def _unmounted(self, handle: MountHandle, err: BaseException | None) -> None:
        if err is not None:
            self.state.handle = handle
            self.screen.set_stack(self.screen.stack)
            self.failed("Cannot unmount", err)
            return
        self.state.busy = ""
        self.screen.update_status()
        self.screen.notify(f"unmounted {handle.target}", markup=False)

    def _remount_failed(self, handle: MountHandle, err: BaseException) -> None:
        """Say what happened and what is mounted now (see :class:`RemountError`)."""
        state = self.state
        assert state.manager is not None
        if isinstance(err, RemountError):
            state.handle = err.now
            if err.now is not None and resolve_backend(state.backend) != err.now.backend:
                state.backend = err.now.backend  # what is mounted is what `m` and the editor go on from
            title = {
                "check": "Cannot remount: the new stack would not mount",
                "unmount": "Cannot remount: the mount could not be unmounted",
                "mount": "The new stack could not be mounted; the old one is mounted again",
                "lost": "The new stack could not be mounted, nor the old one again",
            }.get(err.phase, "The remount failed")
            outcome = err.outcome
        else:  # not from MountManager.remount: look at what is mounted there
            state.handle = next((h for h in state.manager.handles if h.target == handle.target), None)
            title = "The remount failed"
            outcome = (
                f"The old stack is mounted at {handle.target}."
                if state.handle is not None
                else f"Nothing is mounted at {handle.target} now."
            )
        self.screen.set_stack(self.screen.stack)
        self.failed(title, err, outcome)


class MountFlows(Flows):
    """``m`` mounts the stack (asks where), ``u`` unmounts it, ``e`` edits it (a remount while mounted)."""

    def mount(self) -> None:
        state, stack = self.state, self.screen.stack
        if state.handle is not None:
            self.screen.notify(f"already {state.handle.note}; u unmounts", markup=False)
            return
        problems = stack_problems(stack, state.backend)
        if problems and all(p.kind == ENGINE_STORAGE for p in problems):
            self._offer_read_only(problems)
            return
        if problems:
            self.show_error("This stack cannot be mounted", problems)
            return
        try:
            manager = state.ensure_manager()
            backend = resolve_backend(state.backend)
        except (UfsError, OSError) as e:  # e.g. the runtime dir cannot be made
            self.show_error("Cannot mount", text=str(e))
            return
        lines = [manager.plan(stack, None, backend, mount_opts(stack))]
        for w in stack_warnings(stack, state.backend):
            lines.append(f"warning: {w.subject}: {w.what} (fix: {w.fix})")
        if backend == "userns":
            lines.append(
                "userns: the mount is visible only inside a user namespace the app holds; the app reads it at "
                "/proc/PID/root/TARGET, and it ends when the app ends."
            )
        lines.append(f"Mount target: Enter for a new empty dir under {manager.runtime}, or type an empty dir.")
        prompt = PromptScreen("Mount the stack", lines, "", "empty: a new dir in the runtime dir")
        self.screen.app.push_screen(prompt, self._target_given)

    def _target_given(self, text: str | None) -> None:
        if text is None:
            return
        target = expand_path(text) if text.strip() else None
        if target is None:
            self._mount_at(None, False)
            return
        tp = target_problem(target)
        if tp is None:
            self._mount_at(target, False)
        elif tp.kind == NOT_EMPTY:

            def over(yes: bool | None) -> None:
                if yes:
                    self._mount_at(target, True)

            lines = [f"{target}: {tp.what}.", "They come back when it is unmounted. Nothing is deleted."]
            self.screen.app.push_screen(
                ConfirmScreen("Mount over a non-empty dir?", lines, "y: mount over it", warn=True), over
            )
        else:
            self.show_error("Cannot mount there", [tp])

    def _offer_read_only(self, problems: list[Problem]) -> None:
        """The upper (or work dir) is an engine's: mount the same view read-only, the upper as the topmost lower."""
        lines = [f"{p.subject}: {p.what}" for p in problems]
        lines.append("Read-only, the upper becomes the topmost lower: the same merged view, and nothing is written.")

        def done(yes: bool | None) -> None:
            if yes:
                self.screen.set_stack(self.screen.stack.read_only())
                self.mount()

        self.screen.app.push_screen(ConfirmScreen("Mount it read-only?", lines, "y: mount read-only"), done)

    def _mount_at(self, target: str | None, force: bool) -> None:
        if not self.start_busy("mounting"):
            return
        state = self.state
        manager, backend, stack = state.ensure_manager(), state.backend, self.mounted_stack(self.screen.stack)

        def work() -> FlowOutcome:
            try:
                return Mounted(manager.mount(stack, target, backend, mount_opts(stack), force=force))
            except (UfsError, OSError) as e:
                return Failed("The mount failed", e)

        self.run(work)

    def mounted_stack(self, stack: Stack) -> Stack:
        """``stack`` as the mount will see it: with the options the backend adds (userxattr for userns), so the
        model reads the same markers (user.overlay.*) and follows the same rules as the mount. fuse-overlayfs
        also honours (and writes) the image-tarball markers (``.wh.NAME``, ``.wh..wh..opq`` and ``.wh..opq``
        in an opaque dir): oci-whiteouts for it; the kernel ignores them: none for the others."""
        try:
            backend = resolve_backend(self.state.backend)
            opts = mount_options(stack, backend, mount_opts(stack))
        except UfsError:
            return stack
        merged = [o for o in dict.fromkeys([*stack.options, *opts]) if o != "oci-whiteouts"]
        if backend == "fuse":
            merged.append("oci-whiteouts")
        return replace(stack, options=tuple(merged), xattr_ns="user" if "userxattr" in merged else stack.xattr_ns)

    def unmount(self) -> None:
        state = self.state
        if state.handle is None:
            self.screen.notify("nothing is mounted by this app (m mounts the stack)")
            return
        if not self.start_busy("unmounting"):
            return
        handle, manager = state.handle, state.manager
        assert manager is not None
        # Stop reading and watching the mount first: the panes go back to the layers.
        state.handle = None
        self.screen.set_stack(self.screen.stack)
        wait = self.screen.live.wait

        def work() -> FlowOutcome:
            for attempt in range(UNMOUNT_TRIES):
                try:
                    manager.unmount(handle)
                    break
                except MountError as e:
                    # Busy: maybe our own panes are still reading the mount; they are done in a moment.
                    if attempt + 1 < UNMOUNT_TRIES and unmount_busy(e):
                        wait(0.1)
                        continue
                    return Unmounted(handle, e)
                except (UfsError, OSError) as e:
                    return Unmounted(handle, e)
            return Unmounted(handle)

        self.run(work)

    def remount(self, handle: MountHandle, stack: Stack, what: str) -> None:
        """Mount ``stack`` (its options, the app's backend) in place of ``handle``."""
        if not self.start_busy(what):
            return
        manager, backend, options = self.state.manager, self.state.backend, mount_opts(stack)
        assert manager is not None

        def work() -> FlowOutcome:
            try:
                return Mounted(manager.remount(handle, stack, backend, options, tries=UNMOUNT_TRIES))
            except (UfsError, OSError) as e:
                return RemountFailed(handle, e)

        self.run(work)

    def edit_stack(self) -> None:
        """The stack editor. Applied while mounted: the edited stack, with its options and backend, replaces
        the mount (checked first: a stack that would not mount leaves the mount as it is)."""
        mine = self.state.ours(self.screen.stack)
        editor = StackEditor(
            self.screen.stack, self.state.backend, mine.target if mine else None, mine, self.screen.options.alias
        )
        self.screen.app.push_screen(editor, self._edited)

    def _edited(self, result: EditResult | None) -> None:
        if result is None:
            return
        state, stack = self.state, self.screen.stack
        handle = state.ours(stack)
        if handle is None:
            state.backend = result.backend
            if result.stack != stack:
                self.screen.set_stack(result.stack)
            return
        try:
            backend = resolve_backend(result.backend)
        except UfsError as e:
            self.show_error("Cannot remount", text=str(e))
            return
        if result.stack == stack and backend == handle.backend:
            state.backend = result.backend
            return
        problems = stack_problems(result.stack, result.backend, replacing=handle)
        if problems:  # refused before the mount is touched
            self.failed(
                "Cannot remount: the edited stack would not mount",
                MountError(problems),
                f"Nothing was changed: the old stack is still mounted at {handle.target}.",
            )
            return
        state.backend = result.backend
        self.remount(handle, self.mounted_stack(result.stack), "remounting the edited stack")


class LayerFlows(Flows):
    """``C`` commits the upper (a new empty upper on top), ``S`` squashes adjacent lowers into a new dir."""

    def commit(self, new_upper: str | None = None, new_work: str | None = None) -> None:
        stack = self.screen.stack
        try:
            plan = plan_commit(stack, new_upper, new_work)
        except NeedsDestination as e:
            lines = [f"{e}.", "The new empty upper and work dir are made where you say; the upper is not changed."]

            def got(answer: tuple[str, ...] | None) -> None:
                if answer is not None:
                    self.commit(*(expand_path(a) if a else "" for a in answer))

            self.screen.app.push_screen(CommitScreen(lines, new_upper or "", new_work or ""), got)
            return
        except UfsError as e:
            self.show_error("Cannot commit", text=str(e))
            return
        lines = list(plan.lines)
        handle = self.state.ours(stack)
        if handle is not None:
            lines.append(f"mounted: {handle.target} is unmounted, then the new stack is mounted there")
        lines.append("The original layers are not changed.")

        def done(yes: bool | None) -> None:
            if yes and self.start_busy("committing"):
                self._commit(plan, handle)

        self.screen.app.push_screen(ConfirmScreen("Commit the upper?", lines, "y: commit"), done)

    def _commit(self, plan: Plan, handle: MountHandle | None) -> None:
        manager = self.state.manager

        def work() -> FlowOutcome:
            try:
                if handle is not None:
                    assert manager is not None
                    _stack, new = commit_remount(plan, manager, handle, tries=UNMOUNT_TRIES)
                    return Mounted(new)
                return Changed(commit(plan), f"committed: the new upper is {plan.creates[0]}")
            except (UfsError, OSError) as e:
                return RemountFailed(handle, e) if handle is not None else Failed("The commit failed", e)

        self.run(work)

    def squash(self) -> None:
        screen = self.screen
        lowers = screen.stack.lowers
        if len(lowers) < 2:
            self.show_error("Cannot squash", text="a squash needs at least two lower layers")
            return
        shown = screen.panes.lower_layer
        top = shown.index if shown is not None and shown.role == "lower" else 0
        top = min(top, len(lowers) - 2)
        owner = engine_storage(lowers[top].path)
        dest = "" if owner else fresh_sibling(lowers[top].path, ".squashed")
        note = f" (the layers are in {owner}, where ufs-tui never writes: name a dir outside it)" if owner else ""
        lines = [f"lower:{la.index}  {la.path}" for la in lowers]
        screen.app.push_screen(SquashScreen(lines, f"lower:{top}..lower:{top + 1}", dest, note), self._squash_asked)

    def _squash_asked(self, answer: tuple[str, ...] | None) -> None:
        if answer is None:
            return
        stack = self.screen.stack
        rng, path = answer
        a, _, b = rng.partition("..")
        a, b = a.strip(), (b or a).strip()
        try:
            plan = plan_squash(stack, a, b, expand_path(path))
        except UfsError as e:
            self.show_error("Cannot squash", text=str(e))
            return
        handle = self.state.ours(stack)
        more = [f"mounted: {handle.target} is remounted with the new stack"] if handle is not None else []

        def done(yes: bool | None) -> None:
            if yes and self.start_busy("squashing"):
                self._squash(stack, plan, handle)

        self.screen.app.push_screen(ConfirmScreen("Squash these layers?", [*plan.lines, *more], "y: squash"), done)

    def _squash(self, stack: Stack, plan: Plan, handle: MountHandle | None) -> None:
        manager = self.state.manager

        def work() -> FlowOutcome:
            try:
                res = squash_layers(stack, plan)
            except (UfsError, OSError) as e:
                return Failed("The squash failed", e)
            note = f"squashed into {res.dest}" + (f" ({len(res.notes)} notes: {res.notes[0]} …)" if res.notes else "")
            if handle is None:
                return Changed(res.stack, note)
            assert manager is not None
            try:
                return Mounted(manager.remount(handle, res.stack, tries=UNMOUNT_TRIES), note)
            except (UfsError, OSError) as e:
                return RemountFailed(handle, e)

        self.run(work)
