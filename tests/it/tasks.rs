//! `/api/tasks/`: pages, create, update, delete and unknown ids.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{TEXT_CONFIG, assert_error, for_each_engine};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_pages() {
    for_each_engine(|server| async move {
        let project = server.project("Pages", TEXT_CONFIG).await;
        let ids = server
            .import(project, json!([{"text": "a"}, {"text": "b"}, {"text": "c"}]))
            .await;
        server.annotate(ids[0], "cat").await;
        server
            .post_json("/api/predictions/", json!({"task": ids[0], "result": [], "score": 0.3}))
            .await;

        let (status, first) = server
            .get(&format!("/api/tasks/?project={project}&page=1&page_size=2"))
            .await;
        assert_eq!(status, StatusCode::OK, "{first}");
        assert_eq!(first["total"], 3);
        let tasks = first["tasks"].as_array().unwrap();
        assert_eq!(tasks.len(), 2);
        assert_eq!((&tasks[0]["id"], &tasks[1]["id"]), (&json!(ids[0]), &json!(ids[1])));

        let (_, second) = server
            .get(&format!("/api/tasks/?project={project}&page=2&page_size=2"))
            .await;
        assert_eq!(second["tasks"].as_array().unwrap().len(), 1);
        assert_eq!(second["tasks"][0]["id"], ids[2]);

        let (status, past) = server
            .get(&format!("/api/tasks/?project={project}&page=3&page_size=2"))
            .await;
        assert_eq!(status, StatusCode::OK, "{past}");
        assert_eq!(past["tasks"], json!([]));
        assert_eq!(past["total"], 3);
        let (status, far) = server
            .get(&format!(
                "/api/tasks/?project={project}&page=4611686018427387904&page_size=4"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{far}");
        assert_eq!(far["tasks"], json!([]));

        let missing = server.get("/api/tasks/").await;
        assert_error(&missing, StatusCode::BAD_REQUEST);
        assert!(missing.1["validation_errors"]["project"].is_array(), "{}", missing.1);

        let (status, full) = server.get(&format!("/api/tasks/?project={project}&fields=all")).await;
        assert_eq!(status, StatusCode::OK, "{full}");
        let full = full["tasks"].as_array().unwrap();
        assert_eq!(full.len(), 3);
        assert!(
            full.iter()
                .all(|t| t["annotations"].is_array() && t["predictions"].is_array()),
            "{full:?}"
        );
        assert_eq!(full[0]["annotations"].as_array().unwrap().len(), 1);
        assert_eq!(full[0]["predictions"].as_array().unwrap().len(), 1);
        assert_eq!(full[1]["annotations"], json!([]));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_create_update_delete_and_unknown_ids() {
    for_each_engine(|server| async move {
        let project = server.project("Crud", TEXT_CONFIG).await;
        let (status, task) = server
            .post_json("/api/tasks/", json!({"project": project, "data": {"text": "made"}}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{task}");
        assert_eq!(task["data"], json!({"text": "made"}));
        assert_eq!(task["project"], project);
        let id = task["id"].as_i64().unwrap();
        assert_eq!(server.task_total(project).await, 1);

        let (status, updated) = server
            .patch_json(&format!("/api/tasks/{id}/"), json!({"data": {"text": "changed"}}))
            .await;
        assert_eq!(status, StatusCode::OK, "{updated}");
        assert_eq!(updated["data"], json!({"text": "changed"}));
        assert_eq!(server.task(id).await["data"], json!({"text": "changed"}));

        let missing_data = server.post_json("/api/tasks/", json!({"project": project})).await;
        assert_error(&missing_data, StatusCode::BAD_REQUEST);

        let (status, body) = server.delete(&format!("/api/tasks/{id}/")).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        assert_error(&server.get(&format!("/api/tasks/{id}/")).await, StatusCode::NOT_FOUND);
        assert_error(
            &server.delete(&format!("/api/tasks/{id}/")).await,
            StatusCode::NOT_FOUND,
        );
        assert_eq!(server.task_total(project).await, 0);

        assert_error(&server.get("/api/tasks/987654321/").await, StatusCode::NOT_FOUND);
        assert_error(&server.get("/api/tasks/abc/").await, StatusCode::NOT_FOUND);
        assert_error(
            &server.patch_json("/api/tasks/abc/", json!({"data": {}})).await,
            StatusCode::NOT_FOUND,
        );
    })
    .await;
}
