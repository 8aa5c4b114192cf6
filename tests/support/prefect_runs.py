"""Flow runs on the Prefect API of the test session, found and waited for."""

import time

from prefect import get_client


def run_by_key(key: str):
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterIdempotencyKey

    with get_client(sync_client=True) as c:
        return c.read_flow_runs(flow_run_filter=FlowRunFilter(idempotency_key=FlowRunFilterIdempotencyKey(any_=[key])))


def wait_final(run_id, timeout=120.0):
    """The flow run once its state is final; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as c:
        while time.monotonic() < deadline:
            fr = c.read_flow_run(run_id)
            if fr.state and fr.state.is_final():
                return fr
            time.sleep(0.3)
    raise AssertionError(f"flow run {run_id} did not finish in {timeout} s")
