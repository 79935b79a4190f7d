//! A user of another organization sees none of alice's records.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{TEXT_CONFIG, assert_error, for_each_engine};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_organization_gets_404_for_every_record() {
    for_each_engine(|server| async move {
        let project = server.project("Alice's project", TEXT_CONFIG).await;
        let tasks = server.import(project, json!([{"text": "a"}, {"text": "b"}])).await;
        let annotation = server.annotate(tasks[0], "cat").await["id"].as_i64().unwrap();
        let (status, prediction) = server
            .post_json(
                "/api/predictions/",
                json!({"task": tasks[0], "result": [], "score": 0.1}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{prediction}");
        let prediction = prediction["id"].as_i64().unwrap();

        let bob = server.user("bob@other.example", Some("Other org")).await;
        let (_, bob_me) = bob.get("/api/current-user/whoami/").await;
        let (_, alice_me) = server.get("/api/current-user/whoami/").await;
        assert_ne!(bob_me["active_organization"], alice_me["active_organization"]);

        let not_found = StatusCode::NOT_FOUND;
        assert_error(&bob.get(&format!("/api/projects/{project}/")).await, not_found);
        assert_error(
            &bob.patch_json(&format!("/api/projects/{project}/"), json!({"title": "Mine now"}))
                .await,
            not_found,
        );
        assert_error(&bob.delete(&format!("/api/projects/{project}/")).await, not_found);
        assert_error(&bob.get(&format!("/api/tasks/{}/", tasks[0])).await, not_found);
        assert_error(
            &bob.patch_json(&format!("/api/tasks/{}/", tasks[0]), json!({"data": {"text": "x"}}))
                .await,
            not_found,
        );
        assert_error(&bob.delete(&format!("/api/tasks/{}/", tasks[1])).await, not_found);
        assert_error(
            &bob.get(&format!("/api/tasks/{}/annotations/", tasks[0])).await,
            not_found,
        );
        assert_error(
            &bob.post_json(&format!("/api/tasks/{}/annotations/", tasks[1]), json!({"result": []}))
                .await,
            not_found,
        );
        assert_error(&bob.get(&format!("/api/annotations/{annotation}/")).await, not_found);
        assert_error(
            &bob.patch_json(&format!("/api/annotations/{annotation}/"), json!({"result": []}))
                .await,
            not_found,
        );
        assert_error(&bob.delete(&format!("/api/annotations/{annotation}/")).await, not_found);
        assert_error(&bob.get(&format!("/api/predictions/{prediction}/")).await, not_found);
        assert_error(&bob.delete(&format!("/api/predictions/{prediction}/")).await, not_found);
        assert_error(
            &bob.get(&format!("/api/projects/{project}/export?exportType=JSON"))
                .await,
            not_found,
        );
        assert_error(
            &bob.post_json(
                &format!("/api/projects/{project}/import"),
                json!([{"text": "intruder"}]),
            )
            .await,
            not_found,
        );
        assert_error(&bob.get(&format!("/api/tasks/?project={project}")).await, not_found);
        assert_error(
            &bob.post_json("/api/tasks/", json!({"project": project, "data": {"text": "intruder"}}))
                .await,
            not_found,
        );
        assert_error(
            &bob.post_json("/api/predictions/", json!({"task": tasks[1], "result": []}))
                .await,
            not_found,
        );
        let (status, predictions) = bob.get(&format!("/api/predictions/?project={project}")).await;
        assert_eq!(status, StatusCode::OK, "{predictions}");
        assert_eq!(predictions, json!([]));

        let (status, list) = bob.get("/api/projects/").await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert!(
            list["results"].as_array().unwrap().iter().all(|p| p["id"] != project),
            "{list}"
        );
        assert_eq!(list["count"], 0);

        // Nothing bob tried changed alice's records.
        let (status, mine) = server.get(&format!("/api/projects/{project}/")).await;
        assert_eq!(status, StatusCode::OK, "{mine}");
        assert_eq!(mine["title"], "Alice's project");
        assert_eq!(server.task_total(project).await, 2);
        assert_eq!(server.task(tasks[0]).await["data"], json!({"text": "a"}));
        let (status, _) = server.get(&format!("/api/annotations/{annotation}/")).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = server.get(&format!("/api/predictions/{prediction}/")).await;
        assert_eq!(status, StatusCode::OK);
        let (_, list) = server.get("/api/projects/").await;
        assert!(
            list["results"].as_array().unwrap().iter().any(|p| p["id"] == project),
            "{list}"
        );

        // An imported annotation naming bob is attributed to the importer instead; one naming a
        // colleague keeps its author.
        let carol = server.user("carol@example.com", None).await;
        let imported = server
            .import(
                project,
                json!([
                    {"data": {"text": "x"}, "annotations": [{"result": [], "completed_by": bob.user_id}]},
                    {"data": {"text": "y"}, "annotations": [{"result": [], "completed_by": carol.user_id}]}
                ]),
            )
            .await;
        assert_eq!(
            server.task(imported[0]).await["annotations"][0]["completed_by"],
            server.user_id
        );
        assert_eq!(
            server.task(imported[1]).await["annotations"][0]["completed_by"],
            carol.user_id
        );
    })
    .await;
}
