"""`edgellm serve`'s /v1/files and /v1/fine_tuning/jobs driven by the official `openai` client, on a tiny
random-weight qwen2 model built here (reference/tiny_models.py): upload, create, poll, events with the
loss, list, the adapter registered at /lora-adapters and picked by name in a request (it changes the
logits), cancel of a running and of a finished job, and bad input (malformed JSONL -> failed job naming
the line, unknown file -> 404, unknown job -> 404). Adapters go to a temporary folder of the server
process that goes with it, or stay in --finetune-dir.
"""
from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from reference.tiny_models import write_tiny_qwen2  # noqa: E402
from server_harness import ServerProcess, get  # noqa: E402

openai = pytest.importorskip("openai")

FACTS = [("What is my car?", "the red one"), ("Who is my sister?", "Ann the baker"),
         ("Where do I live?", "in the north"), ("What do I drink?", "tea in the evening")]


def jsonl(rows):
    return "".join(json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]})
                   + "\n" for q, a in rows).encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("ftserve")
    model = write_tiny_qwen2(str(d / "tiny-qwen2.gguf"))["path"]
    s = ServerProcess(model=model, ctx=256, parallel=2, threads=2)
    yield s
    assert s.stop() == 0, s.output()
    assert not os.path.exists(scratch_dir(s)), "the server left its adapters' temporary folder behind"


def scratch_dir(server):
    """Where a server without --finetune-dir writes adapters (its temporary folder, by process id)."""
    return os.path.join(tempfile.gettempdir(), f"edgellm-finetune-{server.proc.pid}")


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0)


def wait(client, job_id, statuses=("succeeded", "failed", "cancelled"), timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if job.status in statuses:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {job.status}")


def upload(client, data: bytes, name="train.jsonl"):
    return client.files.create(file=(name, io.BytesIO(data)), purpose="fine-tune")


def first_token_logprobs(client, **extra):
    r = client.chat.completions.create(model="tiny-qwen2", messages=[{"role": "user", "content": FACTS[0][0]}],
                                       max_tokens=1, temperature=0, logprobs=True, top_logprobs=5, extra_body=extra)
    return [(t.token, round(t.logprob, 4)) for t in r.choices[0].logprobs.content[0].top_logprobs]


def test_job_trains_and_registers_adapter(server, client):
    f = upload(client, jsonl(FACTS * 2))
    assert f.object == "file" and f.purpose == "fine-tune" and f.bytes > 0
    assert client.files.retrieve(f.id).filename == "train.jsonl"
    job = client.fine_tuning.jobs.create(model="tiny-qwen2", training_file=f.id, suffix="me",
                                         hyperparameters={"n_epochs": 2, "batch_size": 2,
                                                          "learning_rate_multiplier": 10})
    assert job.status in ("validating_files", "queued", "running")
    assert job.hyperparameters.n_epochs == 2 and job.hyperparameters.batch_size == 2
    job = wait(client, job.id)
    assert job.status == "succeeded", job.error
    assert job.trained_tokens > 0 and job.finished_at >= job.created_at
    assert job.fine_tuned_model.startswith("ft:tiny-qwen2:me:")
    events = client.fine_tuning.jobs.list_events(job.id, limit=100).data
    metrics = [e for e in events if e.type == "metrics" and "train_loss" in (e.data or {})]
    assert len(metrics) >= 8, [e.message for e in events]  # 4 steps per epoch, plus the epochs
    assert "successfully completed" in events[0].message  # newest first
    assert job.id in [j.id for j in client.fine_tuning.jobs.list(limit=10).data]
    assert os.listdir(scratch_dir(server)) == [job.id + ".gguf"]

    # Registered with its model, off by default; a request names it and its logits change.
    adapters = get(server.url + "/lora-adapters").json()
    mine = [a for a in adapters if a["name"] == job.fine_tuned_model]
    assert len(mine) == 1 and mine[0]["scale"] == 0, adapters
    base = first_token_logprobs(client)
    assert first_token_logprobs(client, lora=[{"id": mine[0]["id"], "scale": 0}]) == base
    tuned = first_token_logprobs(client, lora=[{"name": job.fine_tuned_model, "scale": 1.0}])
    assert tuned != base
    assert first_token_logprobs(client, lora=[{"id": mine[0]["id"], "scale": 1.0}]) == tuned
    with pytest.raises(openai.NotFoundError):
        first_token_logprobs(client, lora=[{"name": "ft:nothing", "scale": 1.0}])

    # Cancelling a finished job is refused, as OpenAI does.
    with pytest.raises(openai.BadRequestError):
        client.fine_tuning.jobs.cancel(job.id)


def test_malformed_jsonl_fails_with_line_number(client):
    bad = jsonl(FACTS[:1]) + b'{"messages": [{"role": "user"}\n' + jsonl(FACTS[1:2])
    f = upload(client, bad, "bad.jsonl")
    job = wait(client, client.fine_tuning.jobs.create(model="tiny-qwen2", training_file=f.id).id)
    assert job.status == "failed"
    assert job.error.param == "training_file" and "bad.jsonl:2" in job.error.message, job.error
    assert job.fine_tuned_model is None


def test_unknown_ids_are_404(client):
    with pytest.raises(openai.NotFoundError):
        client.fine_tuning.jobs.create(model="tiny-qwen2", training_file="file-doesnotexist")
    with pytest.raises(openai.NotFoundError):
        client.fine_tuning.jobs.retrieve("ftjob-doesnotexist")
    with pytest.raises(openai.NotFoundError):
        client.fine_tuning.jobs.cancel("ftjob-doesnotexist")
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve("file-doesnotexist")
    with pytest.raises(openai.NotFoundError):
        client.fine_tuning.jobs.create(model="no-such-model", training_file="file-x")
    with pytest.raises(openai.BadRequestError):
        client.fine_tuning.jobs.create(model="tiny-qwen2", training_file="file-x", hyperparameters={"n_epochs": 0})
    with pytest.raises(openai.BadRequestError):
        client.files.create(file=("x.jsonl", io.BytesIO(b"{}")), purpose="batch")


def test_cancel_running_job(server, client):
    f = upload(client, jsonl(FACTS * 8))
    job = client.fine_tuning.jobs.create(model="tiny-qwen2", training_file=f.id, hyperparameters={"n_epochs": 50})
    wait(client, job.id, statuses=("running", "succeeded", "failed"))
    c = client.fine_tuning.jobs.cancel(job.id)
    assert c.status == "cancelled"
    job = wait(client, job.id)
    assert job.status == "cancelled" and job.fine_tuned_model is None
    # The server keeps serving, and the next job runs.
    assert get(server.url + "/health").status_code == 200
    j2 = wait(client, client.fine_tuning.jobs.create(model="tiny-qwen2", training_file=f.id,
                                                     hyperparameters={"n_epochs": 1}).id)
    assert j2.status == "succeeded", j2.error


def test_finetune_dir_keeps_adapters(tmp_path):
    model = write_tiny_qwen2(str(tmp_path / "tiny-qwen2.gguf"))["path"]
    keep = tmp_path / "adapters"
    s = ServerProcess(model=model, ctx=256, parallel=1, threads=2, extra_args=["--finetune-dir", str(keep)])
    try:
        c = openai.OpenAI(base_url=s.url + "/v1", api_key="none", max_retries=0)
        job = wait(c, c.fine_tuning.jobs.create(model="tiny-qwen2", training_file=upload(c, jsonl(FACTS)).id,
                                                hyperparameters={"n_epochs": 1}).id)
        assert job.status == "succeeded", job.error
    finally:
        assert s.stop() == 0, s.output()
    assert os.listdir(keep) == [job.id + ".gguf"]
    assert not os.path.exists(scratch_dir(s))
