"""What an overlay mount does where its options do not say: this kernel's overlay module defaults.

The mount table lists only the options that differ from the module's defaults
(``/sys/module/overlay/parameters``): a live mount's view follows both. A stack given by hand keeps the
model's own assumptions instead (metacopy files and redirects followed, see the README's ``-o``).
"""

from __future__ import annotations

# The options that change what a mount shows (the rest, e.g. xino or volatile, do not; oci-whiteouts is ours).
_VIEW_OPTIONS = ("userxattr", "redirect_dir=", "metacopy=", "index=", "nfs_export=", "oci-whiteouts")
_PARAMETERS = "/sys/module/overlay/parameters"


def module_default(name: str) -> bool | None:
    """The overlay module's boolean parameter ``name`` (``index``, ``metacopy``...), None if it cannot be read."""
    try:
        with open(f"{_PARAMETERS}/{name}", "rb") as f:
            value = f.read(8).strip()
    except OSError:
        return None
    return value in (b"Y", b"1")


def in_effect(options: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The options of a live mount that change its view, with the module's defaults said where they are not:
    ``metacopy`` (off unless the module turns it on) and ``redirect_dir`` (nofollow where the module neither
    turns redirects on nor always follows them)."""
    kept = tuple(o for o in options if o.startswith(_VIEW_OPTIONS))
    said = {o.split("=", 1)[0] for o in kept}
    extra: list[str] = []
    if "metacopy" not in said and module_default("metacopy") is False:
        extra.append("metacopy=off")
    follows = module_default("redirect_dir") or module_default("redirect_always_follow") is not False
    if "redirect_dir" not in said and "userxattr" not in said and not follows:
        extra.append("redirect_dir=nofollow")
    return kept + tuple(extra)
