"""Extract (``E``): save the selected version of a file or dir, the one the focused pane shows (a layer's own
copy, a deleted one too, or the merged view's), to a path the user gives. It asks where, says what it will
write (a place inside the stack or an engine's storage is refused: :mod:`ufs_tui.core.extract`), asks again,
and writes in a worker; the same two steps as ``ufs-tui cp``."""

from __future__ import annotations

from ..core import extract
from ..core.model.display import printable
from ..core.model.errors import UfsError
from ..core.model.stack import Layer
from .flows import Continue, Failed, FlowOutcome, Flows
from .screens.confirm import ConfirmScreen, PromptScreen, expand_path


class ExtractFlow(Flows):
    def start(self, layer: Layer | None, path: str) -> None:
        version = f"{layer.name}'s own copy" if layer is not None else "the merged view's version"
        lines = [f"{version} of {printable(path)}", "to a path outside the stack (an existing dir: into it)"]

        def asked(dest: str | None) -> None:
            if dest and dest.strip():
                self.run(lambda: self._plan(layer, path, expand_path(dest)))

        self.screen.app.push_screen(PromptScreen("Extract", lines, "", "DEST"), asked)

    def _plan(self, layer: Layer | None, path: str, dest: str) -> FlowOutcome:
        try:
            plan = extract.plan(self.screen.stack, path, dest, layer=layer.name if layer is not None else None)
        except UfsError as e:
            return Failed("Cannot extract", e)
        return Continue(lambda: self._confirm(plan))

    def _confirm(self, plan: extract.Plan) -> None:
        if plan.refused:
            self.show_error("Cannot extract", text="\n".join(printable(line) for line in plan.refused))
            return
        lines = [*plan.describe(), *(f"cannot copy: {p}" for p in plan.problems), *(f"note: {n}" for n in plan.notes)]

        def answered(yes: bool | None) -> None:
            if yes:
                self.run(lambda: self._write(plan))

        self.screen.app.push_screen(
            ConfirmScreen("Extract it?", [printable(x) for x in lines], "y: write it"), answered
        )

    def _write(self, plan: extract.Plan) -> FlowOutcome:
        problems: list[str] = []
        done = extract.write(plan, problems.append)
        return Continue(lambda: self._written(plan, done, problems))

    def _written(self, plan: extract.Plan, done: extract.Written, problems: list[str]) -> None:
        words = f"wrote {extract.summary(done.counts)} to {printable(plan.target)}"
        if problems:
            words += f"; {len(problems)} not written, the first: {printable(problems[0])}"
        self.screen.notify(words, title="Extracted", severity="warning" if problems else "information", markup=False)
