"""What the promotion workflow must keep doing, checked on `.github/workflows/*.yml`.

    python3 tests/workflows/check_workflows.py        (scripts/test.sh runs it; needs PyYAML)

- every action is pinned to a full commit SHA, with the tag it came from in a comment;
- the workflow grants nothing by default and every job names its own permissions; only the jobs
  that assume an AWS role get `id-token: write`;
- each environment is deployed by one job that runs in the GitHub environment of that name
  (prod's has required reviewers, and its role trusts nothing else), in its own concurrency
  group that never cancels a deploy half way;
- a deploy job deploys the artifact the synth job uploaded for its environment, with
  `cdk deploy --app <that artifact>`, and builds or synthesizes nothing itself;
- dev, staging and prod deploy in that order, on pushes to main only.

Each check is also seen to fail: the tests below break a copy of the workflow and expect the
error.
"""

from __future__ import annotations

import copy
import pathlib
import re
import sys
import unittest

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
PIPELINE = WORKFLOWS / "ci.yml"
ENVS = ["dev", "staging", "prod"]
STAGES = {"dev": "Dev", "staging": "Staging", "prod": "Prod"}
PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
# What must not happen in a deploy job: building or synthesizing the app again.
RESYNTH = re.compile(r"cdk\s+synth|synth\.sh|cargo\s|--app\s+['\"]?node|cdk\s+deploy(?![^\n]*--app)")


def load(path: pathlib.Path) -> dict:
    text = path.read_text()
    workflow = yaml.safe_load(text)
    # YAML 1.1 reads the key `on` as True.
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    workflow["_text"] = text
    return workflow


def steps(job: dict) -> list[dict]:
    return job.get("steps") or []


def run_text(job: dict) -> str:
    return "\n".join(str(s.get("run", "")) for s in steps(job))


def pin_errors(name: str, workflow: dict) -> list[str]:
    errors = []
    lines = workflow["_text"].splitlines()
    for job_id, job in workflow.get("jobs", {}).items():
        for step in steps(job):
            uses = step.get("uses")
            if uses is None or uses.startswith("./"):
                continue
            if not PINNED.match(uses):
                errors.append(f"{name}: job {job_id}: '{uses}' is not pinned to a commit SHA")
                continue
            if not any(uses in line and re.search(r"#\s*\S", line) for line in lines):
                errors.append(f"{name}: job {job_id}: '{uses}' has no comment naming its tag")
    return errors


def permission_errors(name: str, workflow: dict) -> list[str]:
    errors = []
    if workflow.get("permissions") not in ({}, "read-all") and workflow.get("permissions") is not None:
        errors.append(f"{name}: the workflow grants {workflow['permissions']} to every job; grant per job")
    if workflow.get("permissions") is None:
        errors.append(f"{name}: no top-level `permissions: {{}}`: jobs would get the repository's default token")
    for job_id, job in workflow.get("jobs", {}).items():
        perms = job.get("permissions")
        if perms is None:
            errors.append(f"{name}: job {job_id} names no permissions")
            continue
        if perms in ("write-all", "read-all"):
            errors.append(f"{name}: job {job_id} has {perms}")
            continue
        assumes_role = any("configure-aws-credentials" in str(s.get("uses", "")) for s in steps(job))
        if perms.get("id-token") == "write" and not assumes_role:
            errors.append(f"{name}: job {job_id} has id-token: write but assumes no AWS role")
        if assumes_role and perms.get("id-token") != "write":
            errors.append(f"{name}: job {job_id} assumes an AWS role without id-token: write")
    return errors


def deploy_jobs(workflow: dict) -> dict[str, tuple[str, dict]]:
    """Environment -> (job id, job) of every job that runs `cdk deploy`."""
    found: dict[str, tuple[str, dict]] = {}
    for job_id, job in workflow.get("jobs", {}).items():
        if "cdk deploy" not in run_text(job):
            continue
        env = job.get("environment")
        env_name = env.get("name") if isinstance(env, dict) else env
        found[str(env_name)] = (job_id, job)
    return found


def synth_artifact_names(workflow: dict) -> set[str]:
    """Artifact names the jobs that synthesize upload, with the matrix expanded."""
    names = set()
    for job in workflow.get("jobs", {}).values():
        if "synth.sh" not in run_text(job):
            continue
        matrix_envs = (job.get("strategy") or {}).get("matrix", {}).get("env", [])
        for step in steps(job):
            if "upload-artifact" in str(step.get("uses", "")):
                pattern = str(step["with"]["name"])
                for env in matrix_envs:
                    names.add(pattern.replace("${{ matrix.env }}", env))
    return names


def deploy_errors(name: str, workflow: dict) -> list[str]:
    errors = []
    jobs = deploy_jobs(workflow)
    if "None" in jobs:
        errors.append(f"{name}: job {jobs['None'][0]} runs cdk deploy outside a GitHub environment")
    uploaded = synth_artifact_names(workflow)
    for env in ENVS:
        if env not in jobs:
            errors.append(f"{name}: no job deploys {env} in the GitHub environment '{env}'")
            continue
        job_id, job = jobs[env]
        concurrency = job.get("concurrency") or {}
        group = concurrency.get("group", "") if isinstance(concurrency, dict) else str(concurrency)
        if env not in str(group):
            errors.append(f"{name}: {job_id} has no concurrency group of its own environment")
        if isinstance(concurrency, dict) and concurrency.get("cancel-in-progress") not in (False, None):
            errors.append(f"{name}: {job_id} may be cancelled half way through a deploy")
        downloads = [s for s in steps(job) if "download-artifact" in str(s.get("uses", ""))]
        artifact = f"cdk-out-{env}"
        if not any(s.get("with", {}).get("name") == artifact for s in downloads):
            errors.append(f"{name}: {job_id} does not download {artifact}")
        elif artifact not in uploaded:
            errors.append(f"{name}: {job_id} downloads {artifact}, which no synth job uploads")
        paths = {s.get("with", {}).get("path") for s in downloads if s.get("with", {}).get("name") == artifact}
        deploys = [line for line in run_text(job).splitlines() if "cdk deploy" in line]
        for line in deploys:
            app = re.search(r"--app\s+(\S+)", line)
            if not app or not any(p and app.group(1).rstrip("/").endswith(str(p).rstrip("/")) for p in paths):
                errors.append(f"{name}: {job_id} deploys something other than the downloaded assembly: {line.strip()}")
            if STAGES[env] not in line and "$STAGE" not in line:
                errors.append(f"{name}: {job_id} does not select the {STAGES[env]} stage's stacks")
        if "$STAGE" in run_text(job) and (job.get("env") or {}).get("STAGE") != STAGES[env]:
            errors.append(f"{name}: {job_id} sets STAGE to {(job.get('env') or {}).get('STAGE')}, not {STAGES[env]}")
        if RESYNTH.search(run_text(job)):
            errors.append(f"{name}: {job_id} builds or synthesizes: it must deploy the synth job's assembly")
    # Promotion order, on main only.
    for before, after in zip(ENVS, ENVS[1:]):
        if before in jobs and after in jobs:
            needs = jobs[after][1].get("needs")
            needs = [needs] if isinstance(needs, str) else (needs or [])
            if jobs[before][0] not in needs:
                errors.append(f"{name}: {jobs[after][0]} does not wait for {jobs[before][0]}")
    if "dev" in jobs:
        condition = str(jobs["dev"][1].get("if", ""))
        if "refs/heads/main" not in condition or "push" not in condition:
            errors.append(f"{name}: {jobs['dev'][0]} is not limited to pushes to main")
    return errors


def check(name: str, workflow: dict, pipeline: bool) -> list[str]:
    errors = pin_errors(name, workflow) + permission_errors(name, workflow)
    if pipeline:
        errors += deploy_errors(name, workflow)
    return errors


class TheWorkflows(unittest.TestCase):
    def setUp(self) -> None:
        self.pipeline = load(PIPELINE)

    def test_every_workflow_passes(self) -> None:
        for path in sorted(WORKFLOWS.glob("*.y*ml")):
            with self.subTest(path.name):
                self.assertEqual(check(path.name, load(path), path == PIPELINE), [])

    def broken(self, change) -> list[str]:
        workflow = copy.deepcopy(self.pipeline)
        change(workflow)
        return check("ci.yml", workflow, True)

    def assertRefused(self, change, message: str) -> None:
        errors = self.broken(change)
        self.assertTrue(any(message in e for e in errors), f"expected '{message}' in {errors}")

    def test_prod_outside_its_environment_is_refused(self) -> None:
        self.assertRefused(lambda w: w["jobs"]["deploy-prod"].pop("environment"), "no job deploys prod")
        self.assertRefused(lambda w: w["jobs"]["deploy-prod"].update(environment="staging"), "no job deploys prod")

    def test_a_deploy_of_a_fresh_synth_is_refused(self) -> None:
        def resynth(w):
            w["jobs"]["deploy-staging"]["steps"][-1]["run"] = "scripts/synth.sh staging && npx cdk deploy 'Staging/*' --app ../assembly"

        self.assertRefused(resynth, "builds or synthesizes")

        def from_source(w):
            w["jobs"]["deploy-staging"]["steps"][-1]["run"] = "npx cdk deploy 'Staging/*' -c env=staging"

        self.assertRefused(from_source, "builds or synthesizes")

    def test_another_environments_artifact_is_refused(self) -> None:
        def wrong(w):
            for s in w["jobs"]["deploy-prod"]["steps"]:
                if "download-artifact" in str(s.get("uses", "")):
                    s["with"]["name"] = "cdk-out-staging"

        self.assertRefused(wrong, "does not download cdk-out-prod")

    def test_an_artifact_nobody_uploads_is_refused(self) -> None:
        self.assertRefused(lambda w: w["jobs"]["synth"]["strategy"]["matrix"].update(env=["dev", "staging"]), "which no synth job uploads")

    def test_skipping_staging_is_refused(self) -> None:
        self.assertRefused(lambda w: w["jobs"]["deploy-prod"].update(needs="deploy-dev"), "does not wait for deploy-staging")

    def test_cancellable_or_shared_concurrency_is_refused(self) -> None:
        self.assertRefused(lambda w: w["jobs"]["deploy-prod"]["concurrency"].update({"cancel-in-progress": True}), "cancelled half way")
        self.assertRefused(lambda w: w["jobs"]["deploy-prod"]["concurrency"].update(group="deploys"), "concurrency group")

    def test_unpinned_actions_are_refused(self) -> None:
        def tag(w):
            w["jobs"]["lint"]["steps"][0]["uses"] = "actions/checkout@v6"

        self.assertRefused(tag, "not pinned to a commit SHA")

    def test_broad_permissions_are_refused(self) -> None:
        self.assertRefused(lambda w: w.update(permissions="write-all"), "grants write-all")
        self.assertRefused(lambda w: w["jobs"]["lint"].pop("permissions"), "job lint names no permissions")
        self.assertRefused(lambda w: w["jobs"]["test"]["permissions"].update({"id-token": "write"}), "assumes no AWS role")

    def test_deploys_from_pull_requests_are_refused(self) -> None:
        self.assertRefused(lambda w: w["jobs"]["deploy-dev"].pop("if"), "not limited to pushes to main")


if __name__ == "__main__":
    sys.exit(unittest.main(verbosity=1))
