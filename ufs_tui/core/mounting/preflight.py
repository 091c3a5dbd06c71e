"""Why an overlay mount would fail, in plain words: checks made before mounting, and the kernel's reasons explained.

:func:`check_mount` looks at a stack and mount options *before* anything is
mounted and returns every :class:`Problem` it can see (OVERLAY-NOTES §7: upper
and work on different filesystems, work inside upper, upper without work, one
lower and no upper, missing layers, overlapping or repeated layers, option
conflicts, an upper that is itself an overlay, a work dir left by a
``volatile`` mount). :func:`mount_warnings` says what will mount but then fail
(dirs with a redirect, mounted with redirect_dir=nofollow or userxattr: EPERM
on lookup). Nothing here writes anything.

:func:`explain` turns what the kernel said about a failed mount (the mount
API's error log, ``/dev/kmsg`` lines, the errno) into a :class:`Problem` with a
fix (:func:`mount_refused`: the :class:`MountError` that carries it to the user).
Each problem callers act on has a code, its ``kind``, never its words.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from ..model.errors import UfsError
from ..model.stack import Stack
from .options import KNOWN_OPTIONS, parse_option

OVERLAYFS_MAGIC = 0x794C7630
MAX_LOWERS = 500


@dataclass(frozen=True)
class Problem:
    """One reason a mount cannot work: ``subject`` (a path or option), what is wrong, and how to fix it.
    ``kind`` is the code callers act on, never the words: the problems a user may choose to override (IN_USE,
    NOT_EMPTY: the CLI's --force, a confirmation in the UI; ENGINE_STORAGE: mount read-only instead), an
    unmount worth retrying (BUSY), options the kernel refuses together (OPTION_CONFLICT), redirects a mount
    will not follow (REDIRECT_REFUSED: a warning)."""

    subject: str
    what: str
    fix: str
    kind: str = ""  # "" | IN_USE | NOT_EMPTY | ENGINE_STORAGE | BUSY | OPTION_CONFLICT | REDIRECT_REFUSED

    def __str__(self) -> str:
        return f"{self.subject}: {self.what} (fix: {self.fix})"


IN_USE = "in-use"  # the upper or work dir is another mount's (without index=on the kernel allows it)
NOT_EMPTY = "not-empty"  # the target dir has entries that the mount would hide
ENGINE_STORAGE = "engine-storage"  # the upper or work dir is an engine's: mount read-only instead
BUSY = "busy"  # EBUSY on unmount: a program has a file open or its cwd inside (retrying may work)
OPTION_CONFLICT = "option-conflict"  # mount options the kernel refuses together ("conflicting options")
REDIRECT_REFUSED = "redirect-refused"  # a warning: it mounts, then renamed dirs fail to look up (nofollow: EPERM)


class MountError(UfsError):
    """A mount or unmount failed, or would fail; ``problems`` say why and how to fix it.

    ``detail`` is what the mounting program itself said, and ``source`` who that is (``kernel``, or
    ``fuse-overlayfs`` for the fuse backend)."""

    def __init__(self, problems: Sequence[Problem], detail: str = "", source: str = "kernel") -> None:
        self.problems = list(problems)
        self.detail = detail
        self.source = source
        text = "; ".join(str(p) for p in self.problems) or "mount failed"
        if detail:
            text += f" [{source}: {detail}]"
        super().__init__(text)

    def lines(self) -> list[str]:
        """One line per problem: what is wrong (with what the kernel or fuse-overlayfs said), and the fix."""
        out: list[str] = []
        for i, p in enumerate(self.problems):
            said = one_line(self.detail) if i == 0 else ""
            if said and said not in p.what:
                out.append(f"{p.subject}: {p.what} ({self.source} said: {said}) (fix: {p.fix})")
            else:
                out.append(one_line(str(p)))
        return out


def one_line(text: str) -> str:
    """Text from a program (maybe several lines) as one line: lines joined with '; '."""
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


# ------------------------------------------------------------------ options
def redirect_always_follow() -> bool:
    """The overlay module's ``redirect_always_follow`` (Y by default; read where the module says)."""
    try:
        with open("/sys/module/overlay/parameters/redirect_always_follow") as f:
            return f.read().strip() != "N"
    except OSError:
        return True


def option_problems(options: Iterable[str], backend: str = "kernel") -> list[Problem]:
    """Unknown options, bad values and the conflicts the kernel refuses."""
    out: list[Problem] = []
    seen: dict[str, str | None] = {}
    for text in options:
        name, value = parse_option(text)
        if name not in KNOWN_OPTIONS:
            out.append(Problem(text, "unknown mount option", "use one of: " + ", ".join(sorted(KNOWN_OPTIONS))))
            continue
        allowed = KNOWN_OPTIONS[name]
        if allowed is None and value is not None:
            out.append(Problem(text, f"{name} takes no value", f"write just '{name}'"))
            continue
        if allowed is not None and value not in allowed:
            out.append(Problem(text, f"{name} needs a value", f"write {name}=" + "|".join(allowed)))
            continue
        seen[name] = value
    userxattr = "userxattr" in seen
    if userxattr and seen.get("metacopy") == "on":
        out.append(
            Problem(
                "metacopy=on,userxattr",
                "conflicting options: the kernel refuses metacopy with userxattr (unprivileged mounts)",
                "drop metacopy=on, or mount as root with the kernel backend and without userxattr",
                kind=OPTION_CONFLICT,
            )
        )
    # redirect_dir=off follows redirects on lookup when the module's redirect_always_follow is on (the default)
    follows = ("on", "follow", "off") if redirect_always_follow() else ("on", "follow")
    if userxattr and seen.get("redirect_dir") in follows:
        out.append(
            Problem(
                f"redirect_dir={seen['redirect_dir']},userxattr",
                "conflicting options: the kernel refuses to follow redirects with userxattr"
                + (
                    " (redirect_dir=off follows them too: redirect_always_follow=Y)"
                    if seen["redirect_dir"] == "off"
                    else ""
                ),
                "use redirect_dir=nofollow or drop it, or mount as root with the kernel backend and without userxattr",
                kind=OPTION_CONFLICT,
            )
        )
    if seen.get("metacopy") == "on" and seen.get("redirect_dir") not in (None, "on"):
        out.append(
            Problem(
                f"metacopy=on,redirect_dir={seen['redirect_dir']}",
                "conflicting options: metacopy=on needs redirect_dir=on (the kernel refuses any other value)",
                "drop redirect_dir=" + str(seen["redirect_dir"]) + " (or use redirect_dir=on)",
                kind=OPTION_CONFLICT,
            )
        )
    if seen.get("nfs_export") == "on" and seen.get("index") == "off":
        out.append(
            Problem(
                "nfs_export=on,index=off",
                "conflicting options: nfs_export needs index",
                "use index=on",
                kind=OPTION_CONFLICT,
            )
        )
    if backend == "fuse" and seen:
        out.append(
            Problem(
                ",".join(sorted(seen)),
                "fuse-overlayfs does not take the kernel's overlay options",
                "drop the --option flags, or use the kernel or userns backend",
            )
        )
    return out


# ------------------------------------------------------------------ stack checks
def engine_storage_problems(stack: Stack) -> list[Problem]:
    """The upper or work dir in an engine's own storage, which ufs-tui never writes to (a mount writes to its
    work dir at once, and to its upper on every change): kind ENGINE_STORAGE, mount it read-only instead."""
    from ..sources.engines import engine_storage

    out: list[Problem] = []
    for what, path in (("upper", stack.upper.path if stack.upper else None), ("work dir", stack.work)):
        owner = engine_storage(path) if path else None
        if path and owner:
            said = f"the {what} is in {owner}, where ufs-tui never writes (a mount writes there)"
            out.append(Problem(path, said, "mount it read-only: its upper as the topmost lower", kind=ENGINE_STORAGE))
    return out


def check_mount(
    stack: Stack, options: Sequence[str] = (), backend: str = "kernel", will_create: Sequence[str] = ()
) -> list[Problem]:
    """Every problem visible before mounting ``stack`` with ``options`` using ``backend``; [] when it looks fine.

    ``will_create``: dirs of the stack that do not exist yet but will be made (empty) before mounting (a
    commit's new upper and work dir); they are checked as the empty dirs they will be."""
    new = {os.path.abspath(p) for p in will_create}
    out: list[Problem] = []
    for layer in stack.all_layers:
        p = None if os.path.abspath(layer.path) in new else _dir_problem(layer.path, f"{layer.name} layer")
        if p:
            out.append(p)
    if stack.work is not None and os.path.abspath(stack.work) not in new:
        p = _dir_problem(stack.work, "work dir")
        if p:
            out.append(p)
    out.extend(option_problems(options, backend))
    out.extend(engine_storage_problems(stack))
    if stack.upper is not None and stack.work is None:
        said = "fuse-overlayfs: workdir not specified" if backend == "fuse" else "the kernel says: missing 'workdir'"
        out.append(
            Problem(
                stack.upper.path,
                f"an upper layer needs a work dir ({said})",
                "give --work DIR: an empty dir on the same filesystem as the upper, not inside it",
            )
        )
    if stack.upper is None and len(stack.lowers) + len(stack.data_layers) < 2 and backend != "fuse":
        out.append(
            Problem(
                "--lower",
                "a read-only stack (no upper) needs at least 2 lower layers",
                "add --upper and --work to make it writable, or add another lower layer",
            )
        )
    if len(stack.lowers) + len(stack.data_layers) > MAX_LOWERS:
        out.append(Problem("--lower", f"more than {MAX_LOWERS} lower layers", "squash some layers first"))
    if backend == "fuse":
        for path in [layer.path for layer in stack.all_layers] + ([stack.work] if stack.work else []):
            if ":" in path or "," in path:
                out.append(
                    Problem(path, "fuse-overlayfs cannot take a path with ':' or ','", "rename it, or use a symlink")
                )
        if stack.data_layers:
            out.append(Problem("--lower", "fuse-overlayfs has no data-only layers ('::')", "use the kernel backend"))
    if stack.upper is not None and stack.work is not None:
        out.extend(_upper_work_problems(stack.upper.path, stack.work, new))
    out.extend(_overlap_problems(stack))
    return out


def _dir_problem(path: str, what: str) -> Problem | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return Problem(path, f"{what} does not exist", "create it or correct the path")
    except OSError as e:
        return Problem(path, f"{what} cannot be reached: {e.strerror}", "check the path and its permissions")
    if not stat.S_ISDIR(st.st_mode):
        return Problem(path, f"{what} is not a directory", "give a directory")
    return None


def _existing(path: str, new: set[str]) -> str:
    """``path``, or for a dir still to be made, its nearest existing parent (the filesystem it will be on)."""
    path = os.path.abspath(path)
    if path not in new:
        return path
    while not os.path.lexists(path) and path != "/":
        path = os.path.dirname(path)
    return path


def _upper_work_problems(upper: str, work: str, new: set[str] | None = None) -> list[Problem]:
    out: list[Problem] = []
    new = new or set()
    try:
        su, sw = os.stat(_existing(upper, new)), os.stat(_existing(work, new))
    except OSError:
        return out  # reported as a missing dir
    if su.st_dev != sw.st_dev:
        out.append(
            Problem(
                work,
                f"the work dir is on a different filesystem than the upper {upper} "
                "(the kernel says: workdir and upperdir must reside under the same mount)",
                "make the work dir an empty dir on the upper's filesystem, e.g. next to the upper",
            )
        )
    if _same_or_inside(work, upper) or _same_or_inside(upper, work):
        out.append(
            Problem(
                work,
                f"the work dir and the upper {upper} overlap (the kernel says: workdir and upperdir must be "
                "separate subtrees)",
                "use two sibling dirs, e.g. X/upper and X/work",
            )
        )
    for path, what in ((upper, "upper"), (work, "work dir")):
        ftype = fs_type(_existing(path, new))
        if ftype == OVERLAYFS_MAGIC:
            out.append(
                Problem(
                    path,
                    f"the {what} is itself on an overlay mount (the kernel says: filesystem not supported as upperdir)",
                    "put the upper and work dirs on a real filesystem (ext4, xfs, btrfs, tmpfs)",
                )
            )
    volatile = os.path.join(work, "work", "incompat", "volatile")
    try:
        was_volatile = os.path.isdir(volatile)
    except OSError:
        was_volatile = False
    if was_volatile:
        out.append(
            Problem(
                work,
                "this work dir was used by a 'volatile' mount (the kernel says: overlay with incompat feature "
                "'volatile' cannot be mounted)",
                f"remove {os.path.join(work, 'work')} (chmod u+rwx it first); if the machine crashed while it "
                "was mounted, the upper may be incomplete",
            )
        )
    return out


def _same_or_inside(path: str, parent: str) -> bool:
    a = os.path.realpath(path).rstrip("/") + "/"
    b = os.path.realpath(parent).rstrip("/") + "/"
    return a.startswith(b)


def _overlap_problems(stack: Stack) -> list[Problem]:
    """Layers given twice, or one inside another (the kernel: conflicting / overlapping ... path, or ELOOP later)."""
    named: list[tuple[str, str]] = [(layer.name, layer.path) for layer in stack.all_layers]
    if stack.work is not None:
        named.append(("work dir", stack.work))
    out: list[Problem] = []
    for i, (na, pa) in enumerate(named):
        for nb, pb in named[i + 1 :]:
            if {na, nb} == {"upper", "work dir"}:
                continue  # reported by _upper_work_problems
            ra, rb = os.path.realpath(pa), os.path.realpath(pb)
            if ra == rb:
                out.append(
                    Problem(
                        pa,
                        f"{na} and {nb} are the same dir (the kernel says: conflicting lowerdir path)",
                        "give each layer once; every layer, the upper and the work dir must be different dirs",
                    )
                )
            elif _same_or_inside(ra, rb) or _same_or_inside(rb, ra):
                inner, outer = (pa, pb) if _same_or_inside(ra, rb) else (pb, pa)
                n_in, n_out = (na, nb) if inner == pa else (nb, na)
                out.append(
                    Problem(
                        inner,
                        f"{n_in} is inside {n_out} {outer} (the kernel says: overlapping layers)",
                        "use layer dirs that do not contain one another, e.g. siblings X/lower, X/upper, X/work",
                    )
                )
    return out


# ------------------------------------------------------------------ warnings: it mounts, then fails
REDIRECT_SCAN_LIMIT = 200_000  # dirs looked at for redirects before giving up (a warning, not a proof)
# The model's code (``Entry.errno``, the kernel's) for a dir whose lookup fails because the mount does not follow
# its redirect; on a dir it has no other cause (the other EPERM, a metacopy file with metacopy off, is a file).
NOFOLLOW_ERRNO = "EPERM"


def redirects_followed(stack: Stack, options: Iterable[str]) -> bool:
    """Whether the mount follows ``overlay.redirect`` (userxattr implies redirect_dir=nofollow)."""
    opts = set(options)
    return not ({"userxattr", "redirect_dir=nofollow"} & opts or stack.xattr_ns == "user")


def refused_redirects(stack: Stack, options: Sequence[str] = (), limit: int = REDIRECT_SCAN_LIMIT) -> list[str]:
    """Merged paths of the dirs whose lookup the kernel will refuse (EPERM) because their redirect is not
    followed with ``options``; [] when redirects are followed. Only layers whose redirects the kernel
    reads are searched (not the bottom lower), and each hit is confirmed with the model (a hidden dir is
    never looked up) by its code, :data:`NOFOLLOW_ERRNO` (a redirect that fails otherwise, e.g. an invalid
    one: EINVAL, is not one the mount refuses to follow). At most ``limit`` dirs are looked at; a last entry
    ``"…"`` says the search stopped."""
    if redirects_followed(stack, options):
        return []
    from ..model.merge import OverlayView

    ns = "user" if "userxattr" in options else stack.xattr_ns
    layers = ([stack.upper] if stack.upper is not None else []) + list(stack.lowers[:-1])
    found: list[str] = []
    seen = 0
    stopped = False
    for layer in layers:
        if layer.fs is not None:
            continue  # an image archive: never mounted
        root = layer.path.rstrip("/")
        for dirpath, dirnames, _files in os.walk(root):
            dirnames.sort()
            for name in dirnames:
                seen += 1
                try:
                    os.getxattr(os.path.join(dirpath, name), f"{ns}.overlay.redirect", follow_symlinks=False)
                except OSError:
                    continue
                rel = os.path.join(dirpath, name)[len(root) :] or "/"
                if rel not in found:
                    found.append(rel)
            if seen > limit:
                stopped = True
                break
        if stopped:
            break
    if not found:
        return ["…"] if stopped else []
    view = OverlayView(replace(stack.read_with(options), xattr_ns=ns))
    out: list[str] = []
    for path in sorted(found):
        try:
            e = view.lookup(path)
        except (UfsError, OSError):
            continue
        if e is not None and e.is_dir and e.errno == NOFOLLOW_ERRNO:
            out.append(path)
    return out + (["…"] if stopped else [])


def mount_warnings(
    stack: Stack, options: Sequence[str] = (), backend: str = "kernel", limit: int = REDIRECT_SCAN_LIMIT
) -> list[Problem]:
    """What will mount but then not work (said before mounting; the mount is not refused for it). ``limit``:
    how many dirs to look at for redirects (see :func:`refused_redirects`)."""
    if backend == "fuse":
        return []
    out: list[Problem] = []
    refused = refused_redirects(stack, options, limit)
    if refused:
        cause = "redirect_dir=nofollow" if "redirect_dir=nofollow" in options else "userxattr"
        shown = [p for p in refused if p != "…"]
        more = len(shown) - 5
        names = ", ".join(shown[:5]) + (f" and {more} more" if more > 0 else "")
        if "…" in refused:
            names += " (the search stopped early: there may be more)"
        fix = (
            "mount with redirect_dir=on (or follow)"
            if cause == "redirect_dir=nofollow" and "userxattr" not in options and stack.xattr_ns != "user"
            else "mount as root with the kernel backend and without userxattr (it never follows redirects)"
        )
        if shown:
            out.append(
                Problem(
                    cause,
                    f"{len(shown)} renamed dir(s) hold a redirect this mount will not follow: {names}; looking "
                    "them up will fail with EPERM (the kernel says: refusing to follow redirect)",
                    fix,
                    kind=REDIRECT_REFUSED,
                )
            )
    return out


def fs_type(path: str) -> int | None:
    """statfs(2) f_type of the filesystem holding ``path``, or None when it cannot be read."""
    import ctypes  # here, not at the top: most commands never need it (start-up time)

    from ..model.libc import libc as load_libc

    libc = load_libc()
    if libc is None:
        return None
    buf = ctypes.create_string_buffer(256)
    if libc.statfs(os.fsencode(path), buf) != 0:
        return None
    return int(ctypes.c_long.from_buffer(buf).value) & 0xFFFFFFFF


# ------------------------------------------------------------------ kernel messages
# (regex on the kernel's message, what is wrong, how to fix it); \1 etc. refer to the match.
KERNEL_MESSAGES: tuple[tuple[str, str, str], ...] = (
    (
        r"workdir and upperdir must reside under the same mount",
        "the upper and the work dir are on different filesystems (mounts)",
        "make the work dir an empty dir on the upper's filesystem, e.g. next to the upper",
    ),
    (
        r"workdir and upperdir must be separate subtrees",
        "the work dir is inside the upper, or the upper inside the work dir",
        "use two sibling dirs, e.g. X/upper and X/work",
    ),
    (
        r"missing 'workdir'",
        "an upper layer needs a work dir",
        "give --work DIR: an empty dir on the same filesystem as the upper",
    ),
    (
        r"at least 2 lowerdir are needed while upperdir nonexistent",
        "a read-only stack (no upper) needs at least 2 lower layers",
        "add --upper and --work to make it writable, or add another lower layer",
    ),
    (
        r"failed to resolve '(?P<path>[^']*)': -2",
        "the layer {path} does not exist",
        "create it or correct the path",
    ),
    (r"(?P<path>\S+) is not a directory", "{path} is not a directory", "give a directory"),
    (
        r"(overlapping|conflicting) (?P<kind>\w+) path",
        "two layers are the same dir or one is inside another ({kind})",
        "use layer dirs that do not contain one another, each given once",
    ),
    (
        r"overlapping layers",
        "one layer contains another, so lookups loop",
        "use layer dirs that do not contain one another",
    ),
    (
        r"only single ':' or double '::' sequences|unescaped trailing colons|empty lowerdir",
        "bad lowerdir syntax: ':::', an empty layer or a trailing ':'",
        "separate layers with ':' (data-only layers with '::'); escape a colon in a path as '\\:'",
    ),
    (
        r"conflicting options: (?P<opts>.*)",
        "the options {opts} cannot be used together",
        "drop one of them (metacopy and redirect_dir=on need a root mount without userxattr)",
    ),
    (
        r"filesystem on (?P<path>.*) not supported as upperdir",
        "the upper {path} is on a filesystem overlay cannot write to (often: itself an overlay)",
        "put the upper and work dirs on a real filesystem (ext4, xfs, btrfs, tmpfs)",
    ),
    (
        r"incompat feature 'volatile'",
        "the work dir was used by a 'volatile' mount",
        "remove WORK/work (chmod u+rwx it first); after a crash the upper may be incomplete",
    ),
    (
        r"failed to verify upper root origin|failed to verify (origin|index)",
        "index=on, but this upper was first used over other lower layers",
        "mount with index=off, or use a fresh upper and work dir",
    ),
    (
        r"(upperdir|workdir) is in-use",
        "another overlay mount is using this upper or work dir",
        "unmount the other overlay first, or use another upper and work dir",
    ),
    (
        r"refusing to follow redirect",
        "the layers hold redirects but redirect_dir=nofollow was asked",
        "mount with redirect_dir=on (or follow)",
    ),
)

_ERRNO_ADVICE: dict[int, tuple[str, str]] = {
    errno.EPERM: (
        "not allowed to mount here (mounting needs root, or a user namespace)",
        "run as root, or use --backend userns",
    ),
    errno.ENODEV: ("the kernel has no overlay filesystem", "load it: modprobe overlay"),
    errno.ENOENT: ("a layer or the target does not exist", "check every path"),
    errno.ENOTDIR: ("a layer or the target is not a directory", "give directories"),
    errno.EBUSY: ("the target or a layer is busy (in use)", "close programs using it, or pick another target"),
    errno.ELOOP: ("layers overlap or one is given twice", "use layer dirs that do not contain one another"),
    errno.EROFS: ("the upper is on a read-only filesystem", "put the upper and work dirs on a writable filesystem"),
    errno.EACCES: ("permission denied on a layer or the target", "check the dirs' owner and mode"),
}


def clean_message(line: str) -> str:
    """``"e overlay: missing 'workdir'"`` / ``"overlayfs: missing 'workdir'"`` → ``"missing 'workdir'"``."""
    line = line.strip()
    if len(line) > 2 and line[1] == " " and line[0] in "ewi":
        line = line[2:]
    for prefix in ("overlayfs: ", "overlay: "):
        if line.startswith(prefix):
            line = line[len(prefix) :]
    return line


def known_reason(messages: Sequence[str], subject: str = "mount") -> Problem | None:
    """The first of the kernel's messages that :data:`KERNEL_MESSAGES` knows, explained; else None."""
    for raw in messages:
        msg = clean_message(raw)
        for pattern, what, fix in KERNEL_MESSAGES:
            m = re.search(pattern, msg)
            if m:
                return Problem(subject, what.format(**m.groupdict()), fix)
    return None


def explain(messages: Sequence[str], err: int | None = None, subject: str = "mount") -> Problem:
    """What went wrong and how to fix it, from the kernel's messages (first match wins) or the errno."""
    known = known_reason(messages, subject)
    if known is not None:
        return known
    if err is not None and err in _ERRNO_ADVICE:
        what, fix = _ERRNO_ADVICE[err]
        text = "; ".join(clean_message(m) for m in messages)
        return Problem(subject, what + (f" (kernel: {text})" if text else ""), fix)
    text = "; ".join(clean_message(m) for m in messages) or (os.strerror(err) if err else "unknown error")
    return Problem(subject, f"the mount failed: {text}", "see the kernel log (dmesg) for more")


def mount_refused(messages: Sequence[str], err: int | None) -> MountError:
    """The kernel's refusal of a mount, for the user: the reason :func:`explain` finds, and what it said."""
    return MountError([explain(messages, err)], "; ".join(clean_message(m) for m in messages))
