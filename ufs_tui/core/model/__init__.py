"""The model: a stack of layers (:mod:`.stack`), what each layer holds (:mod:`.markers`, :mod:`.dirscan`), and
the merged view the kernel would show, one dir at a time (:mod:`.merge` and its parts)."""
