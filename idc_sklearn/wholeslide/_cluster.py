"""A cohort's slides as tasks on a Dask cluster, the model sent once to each worker.

The estimator travels in a worker plugin (``distributed``'s ``WorkerPlugin``): the
client pickles it once, the scheduler hands those bytes to every worker, those
present and those that join later, and each worker unpickles it once, when the
plugin is set up. Each slide is then a small task (its path, its folder and the
options) that finds the model in its worker's plugin, and writes the slide's
outputs where it runs: the slides and the output folder must be on a file system
that the workers and the client share. The plugin is removed when the cohort ends.

Why not ``client.scatter(estimator, broadcast=True)``: the Active Memory Manager
(on by default) drops replicas that no waiting task needs (its ``ReduceReplicas``
policy; ``Client.scatter``'s documentation says broadcasting is incompatible with
it), and a worker that lost its copy fetches and unpickles the model again.

Imported only where ``predict_slides`` is given a client: ``distributed`` is
optional.
"""

from __future__ import annotations

import multiprocessing
import uuid

from distributed import WorkerPlugin, as_completed, get_worker

from idc_sklearn.wholeslide._outputs import failed_row, run_slide


class ModelPlugin(WorkerPlugin):
    """Holds the estimator on each worker, from its setup to its teardown."""

    def __init__(self, estimator):
        self.estimator = estimator

    def teardown(self, worker) -> None:
        self.estimator = None


def slide_task(plugin: str, slide, folder, threshold, options, settings) -> dict:
    """Run on a worker: one slide with the model of the worker's ``plugin``."""
    worker = get_worker()
    if options.get("num_workers", "auto") == "auto" and (
        multiprocessing.current_process().daemon
    ):
        # A nanny's worker is a daemon process, which may not start DataLoader
        # workers: read the tiles in the task.
        options = {**options, "num_workers": 0}
    return run_slide(
        worker.plugins[plugin].estimator,
        slide,
        folder,
        threshold=threshold,
        options=options,
        settings=settings,
        worker=worker.address,
    )


def run_on_cluster(client, estimator, jobs, *, threshold, options, settings, bar):
    """Each ``(index, slide, folder)`` of ``jobs`` as a task; the rows by index.

    A task whose worker was lost (``KilledWorker``, a cancelled future) gives a
    failed row; the other slides go on.
    """
    run = uuid.uuid4().hex[:12]
    plugin = f"idc-sklearn-model-{run}"
    client.register_plugin(ModelPlugin(estimator), name=plugin)
    futures = {}
    try:
        for index, slide, folder in jobs:
            future = client.submit(
                slide_task,
                plugin,
                slide,
                folder,
                threshold,
                options,
                settings,
                key=f"predict_slide-{run}-{index}",
            )
            futures[future] = (index, slide, folder)
        rows = {}
        for future in as_completed(futures):
            index, slide, folder = futures[future]
            try:
                rows[index] = future.result()
            except Exception as exc:  # noqa: BLE001 - reported; the others go on
                rows[index] = failed_row(slide, folder, exc, None, None)
            bar.update()
        return rows
    finally:
        # Where interrupted, the tasks not yet run are dropped.
        client.cancel(list(futures))
        client.unregister_worker_plugin(plugin)
