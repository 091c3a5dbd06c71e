"""Image archives written by hand for the tests (the engines' own archives are tested in tests/engines)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile


def docker_save_archive(path: str) -> None:
    """A two-layer ``docker save`` archive, written by hand: layer 1 has a, b and dir/x; layer 2 replaces a,
    adds c and deletes b with a ``.wh.`` whiteout."""

    def layer(files: dict[str, bytes]) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    layers = [
        layer({"a": b"a1\n", "b": b"b1\n", "dir/x": b"x\n"}),
        layer({"a": b"a2 longer\n", "c": b"c\n", ".wh.b": b""}),
    ]
    config = {
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(data).hexdigest() for data in layers]},
        "history": [{"created_by": "ADD base /"}, {"created_by": "/bin/sh -c change things"}],
    }
    with tarfile.open(path, "w") as t:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))

        add("config.json", json.dumps(config).encode())
        for n, data in enumerate(layers):
            add(f"l{n}/layer.tar", data)
        manifest = [{"Config": "config.json", "RepoTags": ["hand:1"], "Layers": ["l0/layer.tar", "l1/layer.tar"]}]
        add("manifest.json", json.dumps(manifest).encode())
