"""The Prefect flow: a thin layer over `docclean.pipeline` that adds tasks, retries, logging and artifacts.

One task per batch of documents (hundreds, `run.batch_size`), never one per document: a Prefect task run
costs about 10 ms of bookkeeping, more than cleaning a document does.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from docclean import pipeline
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


process_batch_task = task(
    pipeline.process_batch, name="clean-batch", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1,
    retry_condition_fn=_retry_on_io_error,
)
finalize_batch_task = task(
    pipeline.finalize_batch, name="finalize-batch", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1,
    retry_condition_fn=_retry_on_io_error,
)


def _task_mapper(prefect_task, retries: int):
    t = prefect_task.with_options(retries=retries)

    def mapper(fn, arg_tuples):
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
    ]
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


@flow(name="docclean", log_prints=False, validate_parameters=True)
def clean_flow(input: str = "raw", output: str = "clean", config_path: str | None = None) -> dict:
    """Clean every document under `input` into the Parquet archive at `output`."""
    logger = get_run_logger()
    config: Config = load_config(config_path)
    report = pipeline.run(
        Path(input), Path(output), config,
        map_process=_task_mapper(process_batch_task, config.run.retries),
        map_finalize=_task_mapper(finalize_batch_task, config.run.retries),
        log=logger.info,
    )
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
