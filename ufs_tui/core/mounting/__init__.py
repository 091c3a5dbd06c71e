"""Mounting a stack, one job a module.

* :mod:`.mount`: the :class:`~.mount.MountManager` the UI and the CLI own (mount, unmount, remount) and the one
  preflight they ask; :mod:`.preflight`: the checks, with problem codes, and the kernel's reasons explained;
  :mod:`.options`: overlay mount options as text.
* The backends: :mod:`.syscalls` (the kernel's mount API, for root), :mod:`.userns` (a helper in a user
  namespace, for ordinary users), :mod:`.fuse` (fuse-overlayfs).
* What was mounted: :mod:`.record` (what ufs-tui mounted, kept in the runtime dir), :mod:`.unmount` (any
  mount, or all of the record's), :mod:`.signals` (undone at exit, on SIGTERM and SIGHUP), :mod:`.mount_table`
  (every mount point of this namespace), :mod:`.in_use` (an upper another mount writes through).
* :mod:`.layers_ops`: the operations that make new layers (commit, squash).
"""
