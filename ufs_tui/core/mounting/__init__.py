"""Mounting a stack: one preflight with problem codes (:mod:`.preflight`), the mount backends, records and
cleanup (:mod:`.mount`), and the operations that make new layers, commit and squash (:mod:`.layers_ops`)."""
