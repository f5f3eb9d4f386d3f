"""The Prefect flow: a thin layer over `docclean.pipeline` that adds tasks, retries, logging and artifacts.

One task per batch of documents (hundreds, `run.batch_size`), never one per document: a Prefect task run
costs about 10 ms of bookkeeping, more than cleaning a document does.
"""

from __future__ import annotations

import contextlib
import inspect
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ProcessPoolTaskRunner

from docclean import pipeline, remote
from docclean.config import Config, load_config


def _retry_on_io_error(task, task_run, state) -> bool:
    # Retry what can pass (a busy disk, a flaky network filesystem), not a bug that will fail again.
    try:
        state.result()
    except OSError:
        return True
    except Exception:
        return False
    return False


def _batch_task(fn, name: str):
    return task(fn, name=name, cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1,
                retry_condition_fn=_retry_on_io_error)


# The task that runs each batch function of the pipeline (one task per batch, never per document).
BATCH_TASKS = {
    pipeline.process_batch: _batch_task(pipeline.process_batch, "clean-batch"),
    pipeline.finalize_batch: _batch_task(pipeline.finalize_batch, "finalize-batch"),
    pipeline.shingle_batch_rows: _batch_task(pipeline.shingle_batch_rows, "shingle-batch"),
    pipeline.split_batch: _batch_task(pipeline.split_batch, "split-batch"),
}


def _task_mapper(retries: int):
    def mapper(fn, arg_tuples):
        t = BATCH_TASKS[fn].with_options(retries=retries)
        # Called, not submitted: batches then run in this process's main thread, where the per-document
        # time limit (SIGALRM) works. Parallelism over batches comes from the configured task runner.
        return [t(*args) for args in arg_tuples]

    return mapper


def report_markdown(report: pipeline.RunReport) -> str:
    lines = [
        f"# docclean run `{report.run_id}`",
        "",
        f"Input `{report.input_root}` -> archive `{report.archive}`",
        "",
        "| documents in | archived | duplicates | rejected | already archived |",
        "|---:|---:|---:|---:|---:|",
        f"| {report.inputs} | {report.documents} | {report.duplicates} | {report.rejects} | {report.skipped} |",
        "",
        f"Accounting: inputs = documents + duplicates + rejects + already archived: **{'balanced' if report.balanced else 'NOT BALANCED'}**. "
        f"Truncated (paywall) documents: {report.truncated}.",
        "",
        f"Full report with charts: `{report.archive}/reports/{report.run_id}.html`",
        "",
    ]
    if report.entries_not_documents:
        lines += ["Container entries that are not documents (not counted as inputs): "
                  + ", ".join(f"{k} {v}" for k, v in sorted(report.entries_not_documents.items())), ""]
    if report.removals_by_rule:
        lines += ["## Edits by rule", "", "| rule | count |", "|---|---:|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(report.removals_by_rule.items(), key=lambda kv: -kv[1])]
        lines.append("")
    if report.rejects_by_reason:
        lines += ["## Rejects by reason", "", "| reason | count |", "|---|---:|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(report.rejects_by_reason.items(), key=lambda kv: -kv[1])]
        lines.append("")
    if report.languages:
        lines += ["## Languages", "", "| language | documents |", "|---|---:|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(report.languages.items(), key=lambda kv: -kv[1])]
    return "\n".join(lines)


def _submit_mapper(runner, retries: int):
    """A pipeline Mapper that submits one task per batch to a task runner; results in batch order."""

    def mapper(fn, arg_tuples):
        prefect_task = BATCH_TASKS[fn].with_options(retries=retries)
        signature = inspect.signature(prefect_task.fn)
        futures = [runner.submit(prefect_task, parameters=signature.bind(*args).arguments) for args in arg_tuples]
        return [f.result() for f in futures]

    return mapper


def _cluster_runner(cluster: str, logger):
    """prefect-dask's runner on the cluster at ``cluster``, once the Prefect API is sure to reach the workers."""
    from flows import dask_cluster as dask_support

    address = cluster if "://" in cluster else f"tcp://{cluster}"
    api_url = dask_support.api_url_from_environment()
    dask_support.check_reachable_api(api_url, address)
    runner = dask_support.task_runner(address)
    runner.__enter__()
    try:
        workers = dask_support.prepare_workers(runner.client, api_url)
    except BaseException:
        runner.__exit__(None, None, None)
        raise
    logger.info(f"running batches on the Dask cluster at {address} ({workers} workers, Prefect API {api_url})")
    return runner


@flow(name="docclean", log_prints=False, validate_parameters=True)
def clean_flow(input: str = "raw", output: str = "clean", config_path: str | None = None,
               cluster: str | None = None, workers: int | None = None) -> dict:
    """Clean every document under `input` into the Parquet archive at `output`.

    `cluster`: address of a Dask scheduler (tcp://host:8786) to run the batches on, through prefect-dask;
    needs PREFECT_API_URL set to a Prefect server the workers reach (see flows/dask_cluster.py). Without it, the
    batches run in this process, or in `run.workers` processes (Prefect's ProcessPoolTaskRunner); `workers`
    overrides the configuration's `run.workers`."""
    logger = get_run_logger()
    config: Config = load_config(config_path, **({"run": {"workers": workers}} if workers is not None else {}))
    input_root, output_root = Path(input), Path(output)
    with contextlib.ExitStack() as stack:
        runner = None
        if cluster:
            runner = _cluster_runner(cluster, logger)
            stack.push(runner.__exit__)
            # Workers resolve relative paths in their own working folder: give them absolute ones.
            input_root, output_root = input_root.resolve(), output_root.resolve()
        elif config.run.workers > 1:
            runner = stack.enter_context(ProcessPoolTaskRunner(max_workers=config.run.workers))
        if runner is not None:
            map_process = map_finalize = _submit_mapper(runner, config.run.retries)
        else:
            map_process = map_finalize = _task_mapper(config.run.retries)
        def run_into(archive_root) -> pipeline.RunReport:
            return pipeline.run(input_root, archive_root, config, map_process=map_process,
                                map_finalize=map_finalize, log=logger.info)

        # s3://: the run works on a local mirror (config.archive.cache_dir), then publishes to the bucket.
        if remote.is_remote(output):
            report = remote.run(output, run_into, config.archive, logger.info)
        else:
            report = run_into(output_root)
    create_markdown_artifact(markdown=report_markdown(report), key="docclean-run-report",
                             description=f"docclean run {report.run_id}")
    create_table_artifact(
        table=[{"rule": k, "count": v} for k, v in sorted(report.removals_by_rule.items(), key=lambda kv: -kv[1])],
        key="docclean-edits-by-rule", description="Edits (removals, repairs, fixes) by rule",
    )
    return {
        "run_id": report.run_id, "inputs": report.inputs, "documents": report.documents,
        "duplicates": report.duplicates, "rejects": report.rejects, "skipped": report.skipped,
    }
