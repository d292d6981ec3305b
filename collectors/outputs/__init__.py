"""Outputs: where batches go (the embedded store, Prometheus, NATS JetStream, northbound gNMI,
the web dashboard).

One small interface, one registry, one file per output (gnmic's outputs). The pipeline gives
each output its own bounded queue and worker task, so an output may take its time in `write`
(a disk, a broker, a network) without ever holding up ingestion: when its queue is full the
oldest batches are dropped and counted in the health view.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..plugins import load

if TYPE_CHECKING:
    from ..model import Batch
    from ..pipeline import Pipeline


@runtime_checkable
class Output(Protocol):
    name: str
    # An output may set `wants_batches = False` when it reads the series registry itself
    # (Prometheus): it then gets no queue and no `write` calls.

    async def start(self, pipeline: Pipeline) -> None:
        """Open connections and files; `pipeline` gives read access to series and target health."""
        ...

    async def write(self, batches: list[Batch]) -> None:
        """Deliver the batches (all of them, in order) or raise; the pipeline retries with
        backoff. Runs in the output's own worker task."""
        ...

    async def stop(self) -> None:
        """Called after the last `write` returned: flush and close."""
        ...

    def health(self) -> dict[str, Any]:
        """Output-specific facts for the health view (connected, last error...)."""
        ...


BUILTIN: dict[str, str] = {
    "sqlite": "qstrata.collectors.outputs.sqlite:SqliteOutput",
    "prometheus": "qstrata.collectors.outputs.prometheus:PrometheusOutput",
    "nats": "qstrata.collectors.outputs.nats:NatsOutput",
    "gnmi": "qstrata.collectors.outputs.gnmi:GnmiOutput",
    "dashboard": "qstrata.collectors.outputs.dashboard:DashboardOutput",
}
"""The built-in outputs by name; imported on use (nats-py is not loaded unless asked for)."""


class UnknownOutput(ValueError):
    pass


def create(kind: str, **options: Any) -> Output:
    """An output of a registered kind; `UnknownOutput` names the kinds there are."""
    return load(BUILTIN, kind, "output", UnknownOutput)(**options)
