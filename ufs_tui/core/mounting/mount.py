"""Mounting stacks: the :class:`MountManager` the UI and the CLI own, and the one preflight they all ask.

Backends:

* ``kernel``: ``mount -t overlay`` done with the kernel's mount API (:mod:`.syscalls`), which hands back the
  kernel's reason when a mount fails. Needs root (CAP_SYS_ADMIN).
* ``userns``: for ordinary users, a helper process that mounts in its own user and mount namespace
  (:mod:`.userns`). **The mount is visible only inside that namespace**; the app keeps it reachable at
  ``/proc/PID/root/TARGET`` (PID = the helper; its owner can read there).
* ``fuse``: ``fuse-overlayfs`` when it is installed (:mod:`.fuse`).

:meth:`MountManager.mount` checks first (:func:`preflight`: nothing changes when a check fails), mounts, and
gives a :class:`~.record.MountHandle`, written to the record (:mod:`.record`) so ``ufs-tui umount --mine`` can
clean up after a crash; :meth:`~MountManager.unmount` and :meth:`~MountManager.unmount_all` undo it
(:mod:`.unmount`), :meth:`~MountManager.remount` replaces it, and :mod:`.signals` undoes every mount on
SIGTERM, SIGHUP and at exit.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence

from ..model.errors import UfsError
from ..model.stack import Stack
from .fuse import fuse_mount
from .in_use import in_use_problems
from .options import mount_options, mount_params, option_string
from .preflight import (
    BUSY,
    NOT_EMPTY,
    MountError,
    Problem,
    check_mount,
    clean_message,
    known_reason,
    mount_refused,
    mount_warnings,
)
from .record import MountHandle, Record, runtime_dir
from .syscalls import KernelMountError, kernel_mount
from .unmount import unmount_handle
from .userns import start_helper

BACKENDS: tuple[str, ...] = ("kernel", "userns", "fuse")


def resolve_backend(backend: str) -> str:
    """``auto`` → ``kernel`` for root, else ``userns``; others checked against :data:`BACKENDS`."""
    if backend == "auto":
        return "kernel" if os.geteuid() == 0 else "userns"
    if backend not in BACKENDS:
        raise UfsError(f"--backend {backend}: unknown backend (use auto, kernel, userns or fuse)")
    return backend


def target_problem(target: str) -> Problem | None:
    """Why ``target`` is not a free mount point; None when it is an existing empty dir.

    A non-empty dir is reported so the caller can ask for confirmation (``force``)."""
    try:
        names = os.listdir(target)
    except FileNotFoundError:
        return Problem(target, "the mount target does not exist", "create it (mkdir) or leave it out for a fresh one")
    except NotADirectoryError:
        return Problem(target, "the mount target is not a directory", "give an empty directory")
    except OSError as e:
        return Problem(target, f"the mount target cannot be read: {e.strerror}", "give an empty directory you own")
    if names:
        return Problem(
            target,
            f"the mount target is not empty ({len(names)} entries would be hidden while mounted)",
            "give an empty dir, or confirm to mount over it",
            kind=NOT_EMPTY,
        )
    return None


def preflight(
    stack: Stack,
    backend: str = "auto",
    options: Sequence[str] = (),
    runtime: str | None = None,
    replacing: MountHandle | None = None,
    allow_in_use: bool = False,
    will_create: Sequence[str] = (),
) -> list[Problem]:
    """The one mount preflight (the stack editor, the CLI and the mount itself ask it): what mounting ``stack``
    with ``backend`` and ``options`` would fail on, said before the kernel does; pure, nothing is written.

    ``runtime``: this user's record, whose mounts count as in use; ``replacing``: a mount of ours unmounted
    first (a remount), whose upper and work dir do not; ``will_create``: dirs made (empty) just before."""
    try:
        resolved = resolve_backend(backend)
    except UfsError as e:
        return [Problem("backend", str(e), "pick auto, kernel, userns or fuse")]
    out: list[Problem] = []
    if not stack.lowers:
        out.append(Problem("lowers", "a stack needs at least one lower layer", "add a lower layer"))
    opts = mount_options(stack, resolved, options)
    out.extend(check_mount(stack, opts, resolved, will_create))
    if resolved == "fuse" and not shutil.which("fuse-overlayfs"):
        out.append(
            Problem("backend fuse", "fuse-overlayfs is not installed", "install it (apt-get install fuse-overlayfs)")
        )
    if resolved == "userns" and not shutil.which("unshare"):
        out.append(Problem("backend userns", "'unshare' is not installed", "install util-linux"))
    out.extend(in_use_problems(stack, opts, runtime, replacing, allow_in_use)[0])
    return out


def unmount_busy(e: MountError) -> bool:
    """Whether an unmount failed because the mount is busy (EBUSY): worth retrying once programs let go."""
    return any(p.kind == BUSY for p in e.problems)


class RemountError(MountError):
    """A remount that did not happen. ``now`` is what is mounted at the target afterwards: the old mount
    (never unmounted, or mounted again) or None (nothing); ``outcome`` says so in words, and ``phase``
    where it stopped: ``check`` (refused before anything was touched), ``unmount`` (the old mount could
    not be unmounted: still there), ``mount`` (the new stack failed; the old one is mounted again) or
    ``lost`` (the old one could not be mounted again either)."""

    def __init__(self, cause: BaseException, phase: str, now: MountHandle | None, outcome: str) -> None:
        if isinstance(cause, MountError):
            super().__init__(cause.problems, cause.detail, cause.source)
        else:
            super().__init__([Problem("remount", str(cause), "see the message, fix it and apply again")])
        self.cause = cause
        self.phase = phase
        self.now = now
        self.outcome = outcome


class MountManager:
    """The mounts one app (or one CLI run) owns. Thread-safe; use as a context manager to unmount on exit.

    ``runtime`` is the runtime dir (default :func:`runtime_dir`), where fresh
    targets are made and the record is kept.
    """

    def __init__(self, runtime: str | None = None) -> None:
        self.runtime = runtime or runtime_dir()
        self.record = Record(self.runtime)
        self.handles: list[MountHandle] = []
        self._lock = threading.RLock()

    def __enter__(self) -> MountManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unmount_all()

    # ---------------------------------------------------------- mount
    def check(
        self,
        stack: Stack,
        backend: str = "auto",
        options: Sequence[str] = (),
        allow_in_use: bool = False,
        replacing: MountHandle | None = None,
        will_create: Sequence[str] = (),
    ) -> list[Problem]:
        """Problems :meth:`mount` would refuse with (:func:`preflight` with this manager's runtime dir)."""
        return preflight(stack, backend, options, self.runtime, replacing, allow_in_use, will_create)

    def warnings(
        self,
        stack: Stack,
        backend: str = "auto",
        options: Sequence[str] = (),
        allow_in_use: bool = False,
        replacing: MountHandle | None = None,
    ) -> list[Problem]:
        """What will mount but not work as hoped (redirects not followed, a shared upper with --force)."""
        backend = resolve_backend(backend)
        opts = mount_options(stack, backend, options)
        out = mount_warnings(stack, opts, backend)
        if allow_in_use:
            out.extend(in_use_problems(stack, opts, self.runtime, replacing, allow=True)[1])
        return out

    def plan(self, stack: Stack, target: str | None = None, backend: str = "auto", options: Sequence[str] = ()) -> str:
        """What mounting will write, in words (say it before doing it)."""
        backend = resolve_backend(backend)
        opts = mount_options(stack, backend, options)
        where = target or f"a new dir under {self.runtime}"
        if stack.upper is None:
            writes = "read-only stack: nothing will be written to any layer"
        else:
            writes = f"writes through the mount go to the upper {stack.upper.path}; work dir: {stack.work}"
        return f"mount ({backend}) at {where} with -o {option_string(stack, opts)}; {writes}"

    def mount(
        self,
        stack: Stack,
        target: str | None = None,
        backend: str = "auto",
        options: Sequence[str] = (),
        force: bool = False,
        detach: bool = False,
        allow_in_use: bool = False,
        replacing: MountHandle | None = None,
    ) -> MountHandle:
        """Mount ``stack`` at ``target`` (default: a fresh dir in the runtime dir); raise :class:`MountError`.

        Checks first (nothing changes when a check fails). ``force`` allows a
        non-empty target; ``allow_in_use`` an upper or work dir that another
        overlay mount uses (without index=on the kernel allows it). ``detach``
        keeps a userns mount alive after this process ends (until ``ufs-tui
        umount``); otherwise its namespace ends with this process. The handle's
        ``warnings`` say what will not work as hoped and what the kernel logged.
        """
        backend = resolve_backend(backend)
        opts = mount_options(stack, backend, options)
        problems = self.check(stack, backend, options, allow_in_use, replacing)
        created = False
        if target is not None:
            tp = target_problem(target)
            if tp is not None and not (force and tp.kind == NOT_EMPTY):
                problems.append(tp)
            target = os.path.realpath(target)
        if problems:
            raise MountError(problems)
        warned = [str(w) for w in self.warnings(stack, backend, options, allow_in_use, replacing)]
        with self._lock:
            if target is None:
                try:
                    target = tempfile.mkdtemp(prefix="mnt-", dir=self.runtime)
                except OSError as e:
                    raise MountError(
                        [
                            Problem(
                                self.runtime,
                                f"cannot make a mount target in the runtime dir: {e.strerror}",
                                "give a TARGET dir, or set UFS_TUI_RUNTIME_DIR to a dir you own",
                            )
                        ]
                    ) from None
                created = True
            handle = MountHandle(
                id=uuid.uuid4().hex, backend=backend, target=target, stack=stack, options=opts,
                created_target=created, detached=detach, warnings=warned,
            )  # fmt: skip
            try:
                if backend == "kernel":
                    self._mount_kernel(handle)
                elif backend == "userns":
                    self._mount_userns(handle)
                else:
                    fuse_mount(handle.stack, handle.target)
            except BaseException:
                if created:
                    with contextlib.suppress(OSError):
                        os.rmdir(target)
                raise
            self.record.add(handle.to_record())
            self.handles.append(handle)
            return handle

    def _mount_kernel(self, h: MountHandle) -> None:
        try:
            said = kernel_mount(mount_params(h.stack, h.options), h.target)
        except KernelMountError as e:
            raise mount_refused(e.messages, e.errno) from None
        h.warnings.extend(_kernel_said(said))

    def _mount_userns(self, h: MountHandle) -> None:
        proc, start, said = start_helper(mount_params(h.stack, h.options), h.target, h.detached)
        h.warnings.extend(_kernel_said(said))
        h.helper_pid = proc.pid
        h.helper_start = start
        h.proc = proc

    # ---------------------------------------------------------- unmount
    def unmount(self, handle: MountHandle, lazy_fallback: bool = False, keep_target: bool = False) -> None:
        """Unmount ``handle``, drop it from the record and remove the target dir if we made it.

        ``lazy_fallback``: if the target is busy, detach it anyway (cleanup on exit/signals).
        """
        with self._lock:
            unmount_handle(handle, lazy_fallback)
            self.record.remove(handle.id)
            if handle in self.handles:
                self.handles.remove(handle)
            if handle.created_target and not keep_target:
                with contextlib.suppress(OSError):
                    os.rmdir(handle.target)

    def unmount_all(self) -> list[str]:
        """Unmount everything this manager mounted (newest first); returns problems, never raises."""
        problems: list[str] = []
        with self._lock:
            for h in reversed(list(self.handles)):
                if h.detached:
                    continue
                try:
                    self.unmount(h, lazy_fallback=True)
                except (UfsError, OSError) as e:
                    problems.append(f"{h.target}: {e}")
        return problems

    def remount(
        self,
        handle: MountHandle,
        stack: Stack,
        backend: str | None = None,
        options: Sequence[str] | None = None,
        tries: int = 1,
        before_mount: Callable[[], object] | None = None,
        will_create: Sequence[str] = (),
    ) -> MountHandle:
        """Replace ``handle`` by ``stack`` mounted at the same target, with ``backend`` and the overlay
        ``options`` given (default: the handle's own).

        The new stack is checked first: if it would not mount, :class:`RemountError` (phase ``check``) is
        raised and the old mount is not touched. A busy old mount is retried ``tries`` times (0.1 s apart),
        then refused (phase ``unmount``: still mounted). ``before_mount`` runs between the unmount and the
        mount (a commit creates its new dirs there; ``will_create`` names them for the checks). If the new
        stack then fails, the old one is mounted again (phase ``mount``; ``lost`` when that fails too).
        """
        backend = resolve_backend(backend or handle.backend)
        opts = tuple(handle.options if options is None else options)
        with self._lock:
            problems = self.check(stack, backend, opts, replacing=handle, will_create=will_create)
            if problems:
                raise RemountError(
                    MountError(problems), "check", handle,
                    f"Nothing was changed: the old stack is still mounted at {handle.target}.",
                )  # fmt: skip
            for attempt in range(max(1, tries)):
                try:
                    self.unmount(handle, keep_target=True)
                    break
                except MountError as e:
                    if attempt + 1 < tries and unmount_busy(e):
                        threading.Event().wait(0.1)
                        continue
                    raise RemountError(
                        e, "unmount", handle,
                        f"Nothing was changed: the old stack is still mounted at {handle.target}.",
                    ) from None  # fmt: skip
            try:
                if before_mount is not None:
                    before_mount()
                new = self.mount(stack, handle.target, backend, opts, force=True, detach=handle.detached)
            except (UfsError, OSError) as e:
                try:
                    old = self.mount(
                        handle.stack, handle.target, handle.backend, handle.options, force=True,
                        detach=handle.detached,
                    )  # fmt: skip
                except (UfsError, OSError) as e2:
                    raise RemountError(
                        e, "lost", None,
                        f"Nothing is mounted at {handle.target} now: the old stack could not be mounted again "
                        f"either ({e2}).",
                    ) from None  # fmt: skip
                old.created_target = handle.created_target
                self.record.add(old.to_record())
                raise RemountError(e, "mount", old, f"The old stack is mounted again at {handle.target}.") from None
            new.created_target = handle.created_target
            self.record.add(new.to_record())
            return new


def _kernel_said(messages: Iterable[str]) -> list[str]:
    """Lines the kernel logged about a mount it made, as warnings for the user (with a fix when it is known)."""
    out: list[str] = []
    for m in messages:
        text = clean_message(m)
        known = known_reason([text])
        if text:
            out.append(f"the kernel said: {text}" + (f" (fix: {known.fix})" if known is not None else ""))
    return out
