"""The fine-tuning half of the OpenAI API for the test server: /v1/files (multipart upload) and
/v1/fine_tuning/jobs (create, retrieve), with status transitions, failures and unreachable spells.

    service.polls_to_finish = 2          # a job answers running this many times, then succeeded
    service.fail_with = "invalid file"   # the next job fails with this reason instead
    service.retrieve_errors = 3          # the next 3 retrieves answer 500
    service.lose_create = ["500", "drop"]  # the next creates make the job, then answer 500 / close the connection
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from email.parser import BytesParser
from typing import Any


@dataclass
class FineTuningService:
    polls_to_finish: int = 2
    fail_with: str | None = None
    retrieve_errors: int = 0
    lose_create: list[str] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: list[dict[str, Any]] = field(default_factory=list)  # every job-creation body
    lock: threading.Lock = field(default_factory=threading.Lock)

    def upload(self, content_type: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        message = BytesParser().parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw
        )
        parts = {
            part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
            for part in message.get_payload()
        }
        if parts.get("purpose") != b"fine-tune" or not parts.get("file"):
            return 400, {
                "error": {
                    "message": "expected purpose fine-tune and a file",
                    "type": "invalid_request_error",
                }
            }
        for line in parts["file"].decode().splitlines():
            json.loads(line)  # a JSONL file, or this raises (a 500 for a broken client)
        with self.lock:
            file_id = f"file-{len(self.files) + 1}"
            self.files[file_id] = parts["file"]
        return 200, {
            "id": file_id,
            "object": "file",
            "bytes": len(parts["file"]),
            "created_at": 0,
            "filename": "train.jsonl",
            "purpose": "fine-tune",
            "status": "processed",
        }

    def create(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            if body.get("training_file") not in self.files:
                return 400, {
                    "error": {
                        "message": f"no file {body.get('training_file')}",
                        "type": "invalid_request_error",
                    }
                }
            self.created.append(body)
            job_id = f"ftjob-{len(self.jobs) + 1}"
            self.jobs[job_id] = {"body": body, "polls": 0, "fail": self.fail_with}
            self.fail_with = None
            return 200, self._job(job_id, "validating_files")

    def lost_reply(self) -> str | None:
        """How the reply to the create just made is lost ("500", "drop"), if it is."""
        with self.lock:
            return self.lose_create.pop(0) if self.lose_create else None

    def list(self, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        """Jobs newest first, filtered by metadata[key]=value as OpenAI's list does."""
        wanted = {
            key[len("metadata[") : -1]: values[0]
            for key, values in query.items()
            if key.startswith("metadata[")
        }
        with self.lock:
            jobs = [self._job(job_id, self._status(job_id)) for job_id in reversed(self.jobs)]
        jobs = [
            job
            for job in jobs
            if all((job["metadata"] or {}).get(k) == v for k, v in wanted.items())
        ]
        return 200, {"object": "list", "data": jobs, "has_more": False}

    def _status(self, job_id: str) -> str:
        job = self.jobs[job_id]
        if job["polls"] <= self.polls_to_finish:
            return "running" if job["polls"] else "validating_files"
        return "failed" if job["fail"] else "succeeded"

    def retrieve(self, job_id: str) -> tuple[int, dict[str, Any]]:
        with self.lock:
            if self.retrieve_errors > 0:
                self.retrieve_errors -= 1
                return 500, {
                    "error": {"message": "temporarily unavailable", "type": "server_error"}
                }
            job = self.jobs.get(job_id)
            if job is None:
                return 404, {
                    "error": {"message": f"no job {job_id}", "type": "invalid_request_error"}
                }
            job["polls"] += 1
            if job["polls"] <= self.polls_to_finish:
                return 200, self._job(job_id, "running")
            return 200, self._job(job_id, "failed" if job["fail"] else "succeeded")

    def _job(self, job_id: str, status: str) -> dict[str, Any]:
        job = self.jobs[job_id]
        body = job["body"]
        done = status == "succeeded"
        suffix = f":{body['suffix']}" if body.get("suffix") else ""
        return {
            "id": job_id,
            "object": "fine_tuning.job",
            "created_at": 0,
            "model": body["model"],
            "status": status,
            "training_file": body["training_file"],
            "fine_tuned_model": f"ft:{body['model']}:opensem{suffix}:{job_id}" if done else None,
            "finished_at": 1 if done else None,
            "organization_id": "org-test",
            "result_files": [],
            "seed": body.get("seed") or 0,
            "validation_file": None,
            "trained_tokens": sum(
                len(line) // 4 for line in self.files[body["training_file"]].decode().splitlines()
            )
            if done
            else None,
            "hyperparameters": {
                "n_epochs": "auto",
                "batch_size": "auto",
                "learning_rate_multiplier": "auto",
            },
            "error": {
                "code": "invalid_training_file",
                "message": job["fail"],
                "param": "training_file",
            }
            if status == "failed"
            else None,
            "metadata": body.get("metadata"),
        }
