"""What the CLI prints from the model: the merged tree (:mod:`.tree`), the diff of an upper or a layer
(:mod:`.diff`), the forked walk behind big trees (:mod:`.forkwalk`), per-layer counts (:mod:`.layerstats`)."""
