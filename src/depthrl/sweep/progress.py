"""The live view of a sweep: a rich table of its cells on a terminal, one line per change elsewhere."""

from __future__ import annotations

from depthrl.sweep.execute import read_rows
from depthrl.sweep.spec import Cell

_STYLE = {"pending": "dim", "running": "yellow", "done": "green", "skipped": "green", "failed": "bold red"}


def progress_table(cells: list[Cell], states: dict[str, dict], metric: str):
    from rich.table import Table

    table = Table(title=f"sweep: {len(cells)} cells", expand=False)
    for column in ("cell", "state", "epoch", "env steps", f"eval/{metric}", "time"):
        table.add_column(column)
    for cell in cells:
        state = states.get(cell.name, {"status": "pending"})
        rows = read_rows(cell.run_dir) if state["status"] != "pending" else []
        last = rows[-1] if rows else {}
        status = state["status"] + (" (resumed)" if state.get("resumed") else "")
        value = last.get(f"eval/{metric}")
        table.add_row(cell.name, f"[{_STYLE[state['status']]}]{status}[/]",
                      f"{last.get('epoch', 0)}/{cell.num_epochs}", f"{last.get('env_steps', 0):,}",
                      f"{value:.3f}" if isinstance(value, float) else "-",
                      f"{last.get('wall_time', 0):.0f} s" if last else "-")
    return table


class Reporter:
    """The rich live table on a terminal; plain lines (one per change of state) elsewhere."""

    def __init__(self, cells: list[Cell], metric: str, live: bool):
        from rich.console import Console

        self.cells, self.metric = cells, metric
        self.console = Console()
        self.live = None
        if live and self.console.is_terminal:
            from rich.live import Live

            self.live = Live(progress_table(cells, {}, metric), console=self.console, refresh_per_second=1)
            self.live.start()
        self.seen: dict[str, str] = {}

    def __call__(self, states: dict[str, dict]) -> None:
        if self.live is not None:
            self.live.update(progress_table(self.cells, states, self.metric))
            return
        for name, state in states.items():
            if self.seen.get(name) != state["status"]:
                self.seen[name] = state["status"]
                extra = f" ({state['note']})" if state.get("note") else ""
                extra += f" in {state['seconds']:.0f} s" if "seconds" in state else ""
                print(f"[sweep] {name}: {state['status']}{extra}", flush=True)

    def close(self, states: dict[str, dict]) -> None:
        if self.live is not None:
            self.live.update(progress_table(self.cells, states, self.metric))
            self.live.stop()
        else:
            self.console.print(progress_table(self.cells, states, self.metric))
