"""Compatibility suite: drive a running labelport server through the official
Label Studio Python SDK (label-studio-sdk==2.1.2), unchanged.

Environment:
    LABELPORT_URL    base URL of the running server, e.g. http://127.0.0.1:8080
    LABELPORT_TOKEN  API token of an existing user (legacy "Token" auth)
    LABELPORT_TEST_S3_ENDPOINT, LABELPORT_TEST_S3_ROOT, LABELPORT_TEST_S3_ACCESS_KEY,
    LABELPORT_TEST_S3_SECRET_KEY
                     an S3 server whose buckets are the sub-folders of ROOT (s3s-fs, as
                     scripts/test.sh starts it); the storage tests are skipped without them

Run:
    pip install -r tests/sdk/requirements.txt
    LABELPORT_URL=... LABELPORT_TOKEN=... pytest tests/sdk -v

Each test creates its own project (unique title) and deletes it afterwards.
See SDK-SURFACE.md next to this file for the exact HTTP surface the SDK uses.
"""

import base64
import datetime as dt
import itertools
import json
import os
import pathlib
import shutil
import time
import uuid

import httpx
import pytest
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError

LABEL_CONFIG = (
    '<View><Image name="image" value="$image"/>'
    '<Choices name="choice" toName="image">'
    '<Choice value="cat"/><Choice value="dog"/>'
    "</Choices></View>"
)
BROKEN_LABEL_CONFIG = '<View><Image name="image" value="$image"/><Choices name="choice" toName="image"'

IMAGES = [f"https://example.com/{i}.jpg" for i in (1, 2, 3)]

# Upper bound when draining SDK pagers, so a server that ignores `page`
# (which would make the SDK pager loop forever) fails instead of hanging.
PAGER_CAP = 500

LS_ERROR_KEYS = {"id", "status_code", "version", "detail", "exc_info"}


def choices_result(label):
    return [
        {
            "from_name": "choice",
            "to_name": "image",
            "type": "choices",
            "value": {"choices": [label]},
        }
    ]


def chosen_labels(result):
    """Extract the list of chosen labels from an annotation/prediction result."""
    assert isinstance(result, list) and result, f"empty or non-list result: {result!r}"
    item = result[0]
    assert item["from_name"] == "choice"
    assert item["to_name"] == "image"
    assert item["type"] == "choices"
    return item["value"]["choices"]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def base_url():
    url = os.environ.get("LABELPORT_URL")
    if not url:
        pytest.fail("LABELPORT_URL is not set (base URL of the running labelport server)")
    return url.rstrip("/")


@pytest.fixture(scope="session")
def token():
    tok = os.environ.get("LABELPORT_TOKEN")
    if not tok:
        pytest.fail("LABELPORT_TOKEN is not set (API token of a labelport user)")
    return tok


@pytest.fixture(scope="session")
def client(base_url, token):
    # max_retries=0: the SDK otherwise silently retries 5xx/408/409/429 with
    # backoff, which would hide server errors and slow failing tests down.
    return LabelStudio(base_url=base_url, api_key=token, timeout=30, max_retries=0)


@pytest.fixture
def make_project(client):
    """Factory: create a project with a unique title; all are deleted at teardown."""
    created = []

    def _make(label_config=LABEL_CONFIG, **kwargs):
        title = kwargs.pop("title", None) or f"labelport-sdk-{uuid.uuid4().hex[:12]}"
        project = client.projects.create(title=title, label_config=label_config, **kwargs)
        assert isinstance(project.id, int), f"project id is not an int: {project.id!r}"
        created.append(project.id)
        return project

    yield _make

    for pid in created:
        try:
            client.projects.delete(pid)
        except ApiError as exc:
            if exc.status_code != 404:
                raise


@pytest.fixture
def project(make_project):
    return make_project()


def import_images(client, project_id, images=IMAGES):
    resp = client.projects.import_tasks(project_id, request=[{"image": url} for url in images])
    assert resp.task_count == len(images), f"import response: {resp!r}"
    return resp


def list_tasks(client, project_id, **kwargs):
    tasks = list(itertools.islice(client.tasks.list(project=project_id, **kwargs), PAGER_CAP))
    assert len(tasks) < PAGER_CAP, "tasks pager did not terminate: is `page` honoured?"
    return tasks


def assert_api_error(excinfo, status):
    err = excinfo.value
    assert isinstance(err, ApiError)
    assert err.status_code == status, f"expected HTTP {status}, got {err.status_code}: {err.body!r}"
    return err


def export_json(client, project_id, download_all_tasks):
    raw = b"".join(
        client.projects.exports.download_sync(
            project_id, export_type="JSON", download_all_tasks=download_all_tasks
        )
    )
    data = json.loads(raw)
    assert isinstance(data, list), f"JSON export is not a list: {data!r}"
    return data


# ------------------------------------------------------------------------------ tests


def test_whoami_returns_current_user(client):
    user = client.users.whoami()
    assert isinstance(user.id, int) and user.id > 0, f"whoami id: {user.id!r}"
    assert isinstance(user.username, str), f"whoami username: {user.username!r}"
    assert user.email or user.username, "whoami returned neither email nor username"


def test_version_reports_release_and_community_edition(client):
    version = client.versions.get()
    assert isinstance(version.release, str) and version.release
    # `projects.exports.as_json` switches to the Enterprise snapshot flow unless
    # the edition is something other than "Enterprise".
    assert version.edition != "Enterprise"


def test_project_create_get_list_update(client, make_project):
    title = f"labelport-sdk-{uuid.uuid4().hex[:12]}"
    created = make_project(title=title, description="compat suite")
    assert created.title == title
    assert created.label_config == LABEL_CONFIG
    assert created.description == "compat suite"

    got = client.projects.get(created.id)
    assert got.id == created.id
    assert got.title == title
    assert got.label_config == LABEL_CONFIG
    assert got.description == "compat suite"
    assert isinstance(got.created_at, dt.datetime), (
        f"created_at not parseable as datetime by the SDK: {got.created_at!r}"
    )
    # ProjectExt helper parses label_config client side.
    interface = got.get_label_interface()
    assert interface.get_control("choice") is not None

    listed = [p for p in itertools.islice(client.projects.list(page_size=100), PAGER_CAP)]
    assert len(listed) < PAGER_CAP, "projects pager did not terminate: is `page` honoured?"
    matches = [p for p in listed if p.id == created.id]
    assert len(matches) == 1, "created project not found exactly once in projects.list()"
    assert matches[0].title == title

    new_title = title + "-renamed"
    updated = client.projects.update(created.id, title=new_title)
    assert updated.id == created.id
    assert updated.title == new_title
    assert updated.label_config == LABEL_CONFIG

    again = client.projects.get(created.id)
    assert again.title == new_title
    assert again.description == "compat suite"


def test_invalid_label_config_is_rejected_with_validation_errors(client):
    title = f"labelport-sdk-bad-{uuid.uuid4().hex[:12]}"
    try:
        with pytest.raises(ApiError) as excinfo:
            client.projects.create(title=title, label_config=BROKEN_LABEL_CONFIG)
    finally:
        # If the server wrongly accepted it, don't leave the project behind.
        for p in itertools.islice(client.projects.list(page_size=100), PAGER_CAP):
            if p.title == title:
                client.projects.delete(p.id)
    err = assert_api_error(excinfo, 400)
    assert isinstance(err.body, dict), f"400 body is not JSON object: {err.body!r}"
    assert "validation_errors" in err.body, f"no validation_errors in {err.body!r}"
    assert "label_config" in err.body["validation_errors"], err.body


def test_import_tasks_and_list_them(client, project):
    import_images(client, project.id)

    tasks = list_tasks(client, project.id)
    assert len(tasks) == 3
    assert sorted(t.data["image"] for t in tasks) == sorted(IMAGES)
    assert len({t.id for t in tasks}) == 3
    for t in tasks:
        assert isinstance(t.id, int)
        assert t.is_labeled is False
        assert t.total_annotations == 0

    # Pagination: the SDK pager walks page=1,2,... until an empty page or 404.
    paged = list_tasks(client, project.id, page_size=2)
    assert sorted(t.id for t in paged) == sorted(t.id for t in tasks)

    # The first page response carries the totals.
    first_page = client.tasks.list(project=project.id, page_size=2)
    assert len(first_page.items) == 2
    assert first_page.response.total == 3


def test_import_tasks_with_data_wrapper(client, project):
    resp = client.projects.import_tasks(
        project.id, request=[{"data": {"image": IMAGES[0]}}, {"data": {"image": IMAGES[1]}}]
    )
    assert resp.task_count == 2
    tasks = list_tasks(client, project.id)
    assert sorted(t.data["image"] for t in tasks) == sorted(IMAGES[:2])


def test_annotation_lifecycle_updates_task_counters(client, project):
    import_images(client, project.id, IMAGES[:1])
    (task,) = list_tasks(client, project.id)

    ann = client.annotations.create(task.id, result=choices_result("cat"))
    assert isinstance(ann.id, int)
    assert chosen_labels(ann.result) == ["cat"]

    listed = client.annotations.list(task.id)
    assert isinstance(listed, list) and len(listed) == 1
    assert listed[0].id == ann.id

    got = client.annotations.get(ann.id)
    assert got.id == ann.id
    assert got.task == task.id
    assert chosen_labels(got.result) == ["cat"]

    updated = client.annotations.update(ann.id, result=choices_result("dog"))
    assert updated.id == ann.id
    assert chosen_labels(updated.result) == ["dog"]
    assert chosen_labels(client.annotations.get(ann.id).result) == ["dog"]

    labeled = client.tasks.get(task.id)
    assert labeled.total_annotations == 1
    assert labeled.is_labeled is True

    client.annotations.delete(ann.id)
    assert client.annotations.list(task.id) == []
    with pytest.raises(ApiError) as excinfo:
        client.annotations.get(ann.id)
    assert_api_error(excinfo, 404)

    unlabeled = client.tasks.get(task.id)
    assert unlabeled.total_annotations == 0
    assert unlabeled.is_labeled is False


def test_prediction_create_and_list(client, project):
    import_images(client, project.id, IMAGES[:2])
    task, other = list_tasks(client, project.id)

    pred = client.predictions.create(
        task=task.id, result=choices_result("dog"), score=0.87, model_version="compat-v1"
    )
    assert isinstance(pred.id, int)
    assert pred.task == task.id
    assert chosen_labels(pred.result) == ["dog"]
    assert pred.score == pytest.approx(0.87)
    assert pred.model_version == "compat-v1"

    by_task = client.predictions.list(task=task.id)
    assert [p.id for p in by_task] == [pred.id]
    assert chosen_labels(by_task[0].result) == ["dog"]
    assert client.predictions.list(task=other.id) == []

    by_project = client.predictions.list(project=project.id)
    assert [p.id for p in by_project] == [pred.id]

    assert client.tasks.get(task.id).total_predictions == 1


def test_json_export_labeled_and_all_tasks(client, project):
    import_images(client, project.id)
    tasks = sorted(list_tasks(client, project.id), key=lambda t: t.id)
    labeled_task = tasks[0]
    ann = client.annotations.create(labeled_task.id, result=choices_result("cat"))

    exported = export_json(client, project.id, download_all_tasks=False)
    assert [t["id"] for t in exported] == [labeled_task.id]
    entry = exported[0]
    assert entry["data"]["image"] == labeled_task.data["image"]
    assert [a["id"] for a in entry["annotations"]] == [ann.id]
    assert chosen_labels(entry["annotations"][0]["result"]) == ["cat"]

    everything = export_json(client, project.id, download_all_tasks=True)
    assert sorted(t["id"] for t in everything) == [t.id for t in tasks]
    by_id = {t["id"]: t for t in everything}
    assert len(by_id[labeled_task.id]["annotations"]) == 1
    for t in tasks[1:]:
        assert by_id[t.id]["annotations"] == []

    # High-level helper: GET /api/version/ then export with download_all_tasks=true.
    as_json = client.projects.exports.as_json(project.id)
    assert sorted(t["id"] for t in as_json) == [t.id for t in tasks]


def test_task_create_get_update_delete_and_404(client, project):
    created = client.tasks.create(data={"image": IMAGES[2]}, project=project.id)
    assert isinstance(created.id, int)
    assert created.data == {"image": IMAGES[2]}

    got = client.tasks.get(created.id)
    assert got.id == created.id
    assert got.data == {"image": IMAGES[2]}
    assert got.project == project.id
    assert isinstance(got.created_at, dt.datetime), (
        f"created_at not parseable as datetime by the SDK: {got.created_at!r}"
    )

    updated = client.tasks.update(created.id, data={"image": IMAGES[0]})
    assert updated.data == {"image": IMAGES[0]}
    assert client.tasks.get(created.id).data == {"image": IMAGES[0]}

    client.tasks.delete(created.id)
    with pytest.raises(ApiError) as excinfo:
        client.tasks.get(created.id)
    assert_api_error(excinfo, 404)
    assert list_tasks(client, project.id) == []

    with pytest.raises(ApiError) as excinfo:
        client.tasks.get(987654321)
    assert_api_error(excinfo, 404)


def test_unauthenticated_request_gets_401_in_label_studio_shape(base_url):
    resp = httpx.get(f"{base_url}/api/projects/", timeout=30)
    assert resp.status_code == 401, resp.text
    body = resp.json()
    assert isinstance(body, dict)
    missing = LS_ERROR_KEYS - body.keys()
    assert not missing, f"error body lacks {missing}: {body!r}"
    assert body["status_code"] == 401


def test_invalid_token_is_rejected_through_sdk(base_url):
    bad = LabelStudio(base_url=base_url, api_key="not-a-valid-token-" + uuid.uuid4().hex, max_retries=0)
    with pytest.raises(ApiError) as excinfo:
        bad.users.whoami()
    assert_api_error(excinfo, 401)


def test_project_delete_removes_it(client, make_project):
    project = make_project()
    client.projects.delete(project.id)

    with pytest.raises(ApiError) as excinfo:
        client.projects.get(project.id)
    assert_api_error(excinfo, 404)

    remaining = itertools.islice(client.projects.list(page_size=100), PAGER_CAP)
    assert project.id not in {p.id for p in remaining}


# ----------------------------------------------------------------------- cloud storage (S3)

S3_VARIABLES = (
    "LABELPORT_TEST_S3_ENDPOINT",
    "LABELPORT_TEST_S3_ROOT",
    "LABELPORT_TEST_S3_ACCESS_KEY",
    "LABELPORT_TEST_S3_SECRET_KEY",
)
FINAL_STORAGE_STATUSES = {"completed", "completed_with_errors", "failed"}
STORAGE_WAIT_SECONDS = 30
TEXT_LABEL_CONFIG = (
    '<View><Text name="text" value="$text"/>'
    '<Choices name="choice" toName="text"><Choice value="cat"/><Choice value="dog"/></Choices></View>'
)


@pytest.fixture
def s3():
    """The test S3 server, and a factory of fresh buckets (folders under its root) removed at teardown."""
    missing = [name for name in S3_VARIABLES if not os.environ.get(name)]
    if missing:
        pytest.skip(f"S3 storage tests skipped: {', '.join(missing)} not set (scripts/test.sh starts s3s-fs)")
    root = pathlib.Path(os.environ["LABELPORT_TEST_S3_ROOT"])
    made = []

    def bucket(label):
        name = f"lp-sdk-{label}-{uuid.uuid4().hex[:16]}"
        folder = root / name
        folder.mkdir(parents=True)
        made.append(folder)
        return name, folder

    connection = dict(
        s3endpoint=os.environ["LABELPORT_TEST_S3_ENDPOINT"],
        aws_access_key_id=os.environ["LABELPORT_TEST_S3_ACCESS_KEY"],
        aws_secret_access_key=os.environ["LABELPORT_TEST_S3_SECRET_KEY"],
        region_name="us-east-1",
    )
    yield bucket, connection
    for folder in made:
        shutil.rmtree(folder, ignore_errors=True)
        # s3s-fs keeps per-object files named after the bucket next to the bucket folders.
        encoded = base64.urlsafe_b64encode(folder.name.encode()).decode().rstrip("=")
        for sidecar in root.glob(f".bucket-{encoded}.*"):
            sidecar.unlink(missing_ok=True)


def wait_for_storage(get, storage_id):
    """Polls a storage until its sync has ended; returns it."""
    deadline = time.monotonic() + STORAGE_WAIT_SECONDS
    while True:
        storage = get(storage_id)
        if storage.status in FINAL_STORAGE_STATUSES:
            return storage
        assert time.monotonic() < deadline, f"sync did not end in {STORAGE_WAIT_SECONDS}s: {storage!r}"
        time.sleep(0.1)


def test_s3_import_storage_create_list_sync(client, make_project, s3):
    bucket, connection = s3
    name, folder = bucket("src")
    (folder / "tasks").mkdir()
    (folder / "tasks" / "one.json").write_text(json.dumps({"text": "one"}))
    (folder / "tasks" / "two.json").write_text(json.dumps([{"text": "two"}, {"text": "three"}]))
    (folder / "elsewhere.json").write_text(json.dumps({"text": "outside the prefix"}))
    project = make_project(label_config=TEXT_LABEL_CONFIG)

    storage = client.import_storage.s3.create(
        project=project.id, bucket=name, prefix="tasks", title="SDK source", **connection
    )
    assert isinstance(storage.id, int)
    assert storage.project == project.id
    assert storage.bucket == name and storage.prefix == "tasks"
    assert storage.title == "SDK source"
    assert storage.status == "initialized"
    # Credentials are write-only: absent from the response, so the SDK model leaves them unset.
    assert storage.aws_secret_access_key is None and storage.aws_access_key_id is None

    got = client.import_storage.s3.get(storage.id)
    assert got.id == storage.id and got.bucket == name
    listed = client.import_storage.s3.list(project=project.id)
    assert [s.id for s in listed] == [storage.id]

    started = client.import_storage.s3.sync(storage.id)
    assert started.id == storage.id
    assert started.status in {"queued", "in_progress"} | FINAL_STORAGE_STATUSES
    done = wait_for_storage(client.import_storage.s3.get, storage.id)
    assert done.status == "completed", f"{done.status}: {done.traceback}"
    assert done.last_sync_count == 3
    assert isinstance(done.last_sync, dt.datetime), f"last_sync: {done.last_sync!r}"

    tasks = list_tasks(client, project.id)
    assert sorted(t.data["text"] for t in tasks) == ["one", "three", "two"]
    assert sorted(t.storage_filename for t in (client.tasks.get(t.id) for t in tasks)) == [
        "tasks/one.json",
        "tasks/two.json",
        "tasks/two.json",
    ]

    # Syncing again imports nothing new.
    client.import_storage.s3.sync(storage.id)
    again = wait_for_storage(client.import_storage.s3.get, storage.id)
    assert again.status == "completed"
    assert again.last_sync_count == 0
    assert len(list_tasks(client, project.id)) == 3


def test_s3_export_storage_writes_annotations(client, make_project, s3):
    bucket, connection = s3
    name, folder = bucket("out")
    project = make_project(label_config=TEXT_LABEL_CONFIG)
    resp = client.projects.import_tasks(project.id, request=[{"text": "to label"}])
    assert resp.task_count == 1
    (task,) = list_tasks(client, project.id)
    first = client.annotations.create(
        task.id, result=[{"from_name": "choice", "to_name": "text", "type": "choices", "value": {"choices": ["cat"]}}]
    )

    storage = client.export_storage.s3.create(
        project=project.id, bucket=name, prefix="exported", can_delete_objects=True, **connection
    )
    assert isinstance(storage.id, int)
    assert storage.project == project.id and storage.bucket == name
    assert storage.aws_secret_access_key is None
    # Creating a target storage exports what the project already has.
    initial = wait_for_storage(client.export_storage.s3.get, storage.id)
    assert initial.status == "completed", f"{initial.status}: {initial.traceback}"
    written = folder / "exported" / str(first.id)
    document = json.loads(written.read_text())
    assert document["id"] == first.id
    assert document["task"]["id"] == task.id
    assert document["result"][0]["value"]["choices"] == ["cat"]

    # An export sync then finds nothing stale.
    client.export_storage.s3.sync(storage.id)
    synced = wait_for_storage(client.export_storage.s3.get, storage.id)
    assert synced.status == "completed"
    assert synced.last_sync_count == 0

    # A new annotation is written when it is saved.
    second = client.annotations.create(
        task.id, result=[{"from_name": "choice", "to_name": "text", "type": "choices", "value": {"choices": ["dog"]}}]
    )
    target = folder / "exported" / str(second.id)
    deadline = time.monotonic() + STORAGE_WAIT_SECONDS
    while True:
        try:
            document = json.loads(target.read_text())
            break
        except (FileNotFoundError, json.JSONDecodeError):
            assert time.monotonic() < deadline, f"{target} was not written"
            time.sleep(0.1)
    assert document["id"] == second.id
    assert document["result"][0]["value"]["choices"] == ["dog"]
