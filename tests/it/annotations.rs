//! Annotations and predictions, and the task counters they keep.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{TEXT_CONFIG, assert_error, choice_result, for_each_engine};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn annotations_keep_task_counters() {
    for_each_engine(|server| async move {
        let project = server.project("Annotated", TEXT_CONFIG).await;
        let task = server.import(project, json!([{"text": "a"}])).await[0];
        let created = server.annotate(task, "cat").await;
        assert_eq!(created["completed_by"], server.user_id);
        assert_eq!(created["task"], task);
        assert_eq!(created["result"], json!([choice_result("cat")]));
        let id = created["id"].as_i64().unwrap();
        let state = server.task(task).await;
        assert_eq!(
            (&state["total_annotations"], &state["is_labeled"]),
            (&json!(1), &json!(true)),
            "{state}"
        );

        let (status, list) = server.get(&format!("/api/tasks/{task}/annotations/")).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(list.as_array().unwrap().len(), 1);
        assert_eq!(list[0]["id"], id);

        let (status, patched) = server
            .patch_json(
                &format!("/api/annotations/{id}/"),
                json!({"result": [choice_result("dog")]}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{patched}");
        assert_eq!(patched["result"], json!([choice_result("dog")]));
        let (_, read) = server.get(&format!("/api/annotations/{id}/")).await;
        assert_eq!(read["result"], json!([choice_result("dog")]));

        let (status, cancelled) = server
            .patch_json(&format!("/api/annotations/{id}/"), json!({"was_cancelled": true}))
            .await;
        assert_eq!(status, StatusCode::OK, "{cancelled}");
        assert_eq!(cancelled["was_cancelled"], true);
        assert_eq!(cancelled["result"], json!([choice_result("dog")]));
        let state = server.task(task).await;
        assert_eq!(state["total_annotations"], 0, "{state}");
        assert_eq!(state["cancelled_annotations"], 1);
        assert_eq!(state["is_labeled"], false);

        let (status, body) = server.delete(&format!("/api/annotations/{id}/")).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let state = server.task(task).await;
        assert_eq!(
            (&state["total_annotations"], &state["cancelled_annotations"]),
            (&json!(0), &json!(0)),
            "{state}"
        );
        assert_eq!(state["is_labeled"], false);
        assert_error(
            &server.get(&format!("/api/annotations/{id}/")).await,
            StatusCode::NOT_FOUND,
        );
        let (_, list) = server.get(&format!("/api/tasks/{task}/annotations/")).await;
        assert_eq!(list, json!([]));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completed_by_must_be_a_member_of_the_organization() {
    for_each_engine(|server| async move {
        let project = server.project("Members", TEXT_CONFIG).await;
        let task = server.import(project, json!([{"text": "a"}])).await[0];
        let outsider = server.user("eve@other.example", Some("Other org")).await;
        let colleague = server.user("carol@example.com", None).await;

        let refused = server
            .post_json(
                &format!("/api/tasks/{task}/annotations/"),
                json!({"result": [], "completed_by": outsider.user_id}),
            )
            .await;
        assert_error(&refused, StatusCode::BAD_REQUEST);
        assert!(
            refused.1["validation_errors"]["completed_by"].is_array(),
            "{}",
            refused.1
        );
        assert_eq!(server.task(task).await["total_annotations"], 0);

        let (status, made) = server
            .post_json(
                &format!("/api/tasks/{task}/annotations/"),
                json!({"result": [], "completed_by": colleague.user_id}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        assert_eq!(made["completed_by"], colleague.user_id);
        let id = made["id"].as_i64().unwrap();
        let refused = server
            .patch_json(
                &format!("/api/annotations/{id}/"),
                json!({"completed_by": outsider.user_id}),
            )
            .await;
        assert_error(&refused, StatusCode::BAD_REQUEST);
        let (_, read) = server.get(&format!("/api/annotations/{id}/")).await;
        assert_eq!(read["completed_by"], colleague.user_id);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predictions_create_list_and_delete() {
    for_each_engine(|server| async move {
        let project = server.project("Predicted", TEXT_CONFIG).await;
        let tasks = server.import(project, json!([{"text": "a"}, {"text": "b"}])).await;
        let other_project = server.project("Elsewhere", TEXT_CONFIG).await;
        let other_task = server.import(other_project, json!([{"text": "z"}])).await[0];

        let (status, prediction) = server
            .post_json(
                "/api/predictions/",
                json!({"task": tasks[0], "result": [choice_result("cat")], "score": 0.75, "model_version": "v2"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{prediction}");
        assert_eq!(prediction["task"], tasks[0]);
        assert_eq!(prediction["project"], project);
        assert_eq!(prediction["score"], 0.75);
        assert_eq!(prediction["model_version"], "v2");
        assert_eq!(prediction["result"], json!([choice_result("cat")]));
        let id = prediction["id"].as_i64().unwrap();
        for (task, score) in [(tasks[1], 0.5), (other_task, 0.1)] {
            let (status, body) = server
                .post_json("/api/predictions/", json!({"task": task, "result": [], "score": score}))
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        assert_eq!(server.task(tasks[0]).await["total_predictions"], 1);

        let (status, by_task) = server.get(&format!("/api/predictions/?task={}", tasks[0])).await;
        assert_eq!(status, StatusCode::OK, "{by_task}");
        assert_eq!(by_task.as_array().unwrap().len(), 1);
        assert_eq!(by_task[0]["id"], id);
        let (status, by_project) = server.get(&format!("/api/predictions/?project={project}")).await;
        assert_eq!(status, StatusCode::OK, "{by_project}");
        let by_project = by_project.as_array().unwrap();
        assert_eq!(by_project.len(), 2);
        assert!(by_project.iter().all(|p| p["project"] == project));

        assert_error(
            &server.post_json("/api/predictions/", json!({"result": []})).await,
            StatusCode::BAD_REQUEST,
        );
        assert_error(
            &server
                .post_json("/api/predictions/", json!({"task": 987654321, "result": []}))
                .await,
            StatusCode::NOT_FOUND,
        );

        let (status, body) = server.delete(&format!("/api/predictions/{id}/")).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        assert_error(
            &server.get(&format!("/api/predictions/{id}/")).await,
            StatusCode::NOT_FOUND,
        );
        let (_, by_task) = server.get(&format!("/api/predictions/?task={}", tasks[0])).await;
        assert_eq!(by_task, json!([]));
        assert_eq!(server.task(tasks[0]).await["total_predictions"], 0);
    })
    .await;
}
