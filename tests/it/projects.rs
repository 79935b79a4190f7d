//! `/api/projects/`: create, validation, paths, update, pages, delete and counters.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{TEXT_CONFIG, assert_error, for_each_engine};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_validates_title_and_label_config() {
    for_each_engine(|server| async move {
        let (status, project) = server
            .post_json("/api/projects/", json!({"title": "Cats", "label_config": TEXT_CONFIG}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{project}");
        assert_eq!(project["title"], "Cats");
        assert_eq!(project["label_config"], TEXT_CONFIG);
        assert_eq!(project["parsed_label_config"]["choice"]["type"], "Choices");
        assert_eq!(project["task_number"], 0);

        let bad_xml = server
            .post_json("/api/projects/", json!({"title": "Bad", "label_config": "<View><Text"}))
            .await;
        assert_error(&bad_xml, StatusCode::BAD_REQUEST);
        assert!(
            bad_xml.1["validation_errors"]["label_config"][0].is_string(),
            "{}",
            bad_xml.1
        );

        let short = server
            .post_json("/api/projects/", json!({"title": "ab", "label_config": TEXT_CONFIG}))
            .await;
        assert_error(&short, StatusCode::BAD_REQUEST);
        assert!(short.1["validation_errors"]["title"][0].is_string(), "{}", short.1);

        // Refused creates left nothing behind.
        let (_, list) = server.get("/api/projects/").await;
        assert_eq!(list["count"], 1, "{list}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_work_with_and_without_a_trailing_slash_and_patch_updates() {
    for_each_engine(|server| async move {
        let (status, created) = server
            .post_json(
                "/api/projects",
                json!({"title": "No slash", "label_config": TEXT_CONFIG}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let id = created["id"].as_i64().unwrap();
        for path in [format!("/api/projects/{id}"), format!("/api/projects/{id}/")] {
            let (status, body) = server.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            assert_eq!(body["id"], id);
        }
        let (status, _) = server.get("/api/projects").await;
        assert_eq!(status, StatusCode::OK);

        let (status, updated) = server
            .patch_json(
                &format!("/api/projects/{id}"),
                json!({"title": "Renamed", "color": "#FF0000", "show_skip_button": false}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{updated}");
        assert_eq!(updated["title"], "Renamed");
        let (_, read) = server.get(&format!("/api/projects/{id}/")).await;
        assert_eq!(read["title"], "Renamed");
        assert_eq!(read["color"], "#FF0000");
        assert_eq!(read["show_skip_button"], false);
        assert_eq!(read["label_config"], TEXT_CONFIG);

        let short = server
            .patch_json(&format!("/api/projects/{id}/"), json!({"title": "ab"}))
            .await;
        assert_error(&short, StatusCode::BAD_REQUEST);
        assert!(short.1["validation_errors"]["title"].is_array(), "{}", short.1);
        let (_, read) = server.get(&format!("/api/projects/{id}/")).await;
        assert_eq!(read["title"], "Renamed");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_list_pages() {
    for_each_engine(|server| async move {
        let mut ids = Vec::new();
        for title in ["First", "Second", "Third"] {
            ids.push(server.project(title, TEXT_CONFIG).await);
        }
        let (status, first) = server.get("/api/projects/?page=1&page_size=1").await;
        assert_eq!(status, StatusCode::OK, "{first}");
        let (status, second) = server.get("/api/projects/?page=2&page_size=1").await;
        assert_eq!(status, StatusCode::OK, "{second}");
        assert_eq!(first["count"], 3);
        assert_eq!(first["results"].as_array().unwrap().len(), 1);
        assert_eq!(second["results"].as_array().unwrap().len(), 1);
        let (a, b) = (&first["results"][0]["id"], &second["results"][0]["id"]);
        assert_ne!(a, b);
        assert!(ids.contains(&a.as_i64().unwrap()) && ids.contains(&b.as_i64().unwrap()));

        let (status, past) = server.get("/api/projects/?page=4&page_size=1").await;
        assert_eq!(status, StatusCode::OK, "{past}");
        assert_eq!(past["results"], json!([]));
        let (status, far) = server.get("/api/projects/?page=4611686018427387904&page_size=4").await;
        assert_eq!(status, StatusCode::OK, "{far}");
        assert_eq!(far["results"], json!([]));

        let (_, all) = server.get("/api/projects/?page_size=10").await;
        let mut listed: Vec<i64> = all["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_i64().unwrap())
            .collect();
        listed.sort_unstable();
        assert_eq!(listed, ids);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_follow_imports_and_annotations_and_delete_removes_the_project() {
    for_each_engine(|server| async move {
        let id = server.project("Counted", TEXT_CONFIG).await;
        let tasks = server
            .import(id, json!([{"text": "a"}, {"text": "b"}, {"text": "c"}]))
            .await;
        let (_, project) = server.get(&format!("/api/projects/{id}/")).await;
        assert_eq!(project["task_number"], 3, "{project}");
        assert_eq!(project["total_annotations_number"], 0);
        server.annotate(tasks[0], "cat").await;
        server.annotate(tasks[1], "dog").await;
        let (_, project) = server.get(&format!("/api/projects/{id}/")).await;
        assert_eq!(project["task_number"], 3, "{project}");
        assert_eq!(project["total_annotations_number"], 2);
        assert_eq!(project["num_tasks_with_annotations"], 2);
        let (_, list) = server.get("/api/projects/").await;
        assert_eq!(list["results"][0]["task_number"], 3, "{list}");

        let (status, body) = server.delete(&format!("/api/projects/{id}/")).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        assert_error(
            &server.get(&format!("/api/projects/{id}/")).await,
            StatusCode::NOT_FOUND,
        );
        assert_error(
            &server.get(&format!("/api/tasks/{}/", tasks[0])).await,
            StatusCode::NOT_FOUND,
        );
        assert_error(
            &server.delete(&format!("/api/projects/{id}/")).await,
            StatusCode::NOT_FOUND,
        );
    })
    .await;
}
