import flows  # noqa: F401  (Prefect settings as the stages have them)
from tasks.train.progress import PrefectProgress, progress_line


def test_progress_lines_move_a_prefect_progress_artifact():
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    @flow(name="progress-test")
    def stage() -> str:
        progress = PrefectProgress("sft")
        for line in ("{'loss': 2.0}\n", progress_line("sft/answer", 10, 40), progress_line("sft/answer", 30, 40)):
            progress(line)
        return str(progress.artifact_id)

    artifact_id = stage()
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["sft-progress"])))
    latest = next(a for a in found if str(a.id) == artifact_id)
    assert latest.type == "progress" and float(latest.data) == 75.0
    assert latest.description == "sft/answer: step 30 of 40"


def test_progress_outside_a_flow_run_publishes_nothing():
    progress = PrefectProgress("sft")
    progress(progress_line("sft/answer", 1, 2))
    assert progress.artifact_id is None
