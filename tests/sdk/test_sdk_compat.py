"""Compatibility suite: drive a running labelport server through the official
Label Studio Python SDK (label-studio-sdk==2.1.2), unchanged.

Environment:
    LABELPORT_URL    base URL of the running server, e.g. http://127.0.0.1:8080
    LABELPORT_TOKEN  API token of an existing user (legacy "Token" auth)

Run:
    pip install -r tests/sdk/requirements.txt
    LABELPORT_URL=... LABELPORT_TOKEN=... pytest tests/sdk -v

Each test creates its own project (unique title) and deletes it afterwards.
See SDK-SURFACE.md next to this file for the exact HTTP surface the SDK uses.
"""

import datetime as dt
import itertools
import json
import os
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
