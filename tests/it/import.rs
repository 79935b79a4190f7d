//! `POST /api/projects/{id}/import`: every body format and file type, and the import options.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Api, TEXT_CONFIG, choice_result, for_each_engine};

/// Posts a raw body and returns the reply's task_count after asserting 201.
async fn import_raw(api: &Api, project: i64, content_type: &str, body: &str) -> i64 {
    let (status, reply) = api
        .post_raw(&format!("/api/projects/{project}/import"), content_type, body)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{content_type}: {reply}");
    reply["task_count"].as_i64().unwrap()
}

/// The data of every task of a project, in order.
async fn all_data(api: &Api, project: i64) -> Vec<Value> {
    let (status, page) = api.get(&format!("/api/tasks/?project={project}&page_size=1000")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["data"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_of_every_format_import() {
    for_each_engine(|server| async move {
        let project = server.project("Bodies", TEXT_CONFIG).await;
        let path = format!("/api/projects/{project}/import");

        let (status, reply) = server.post_json(&path, json!([{"text": "a1"}, {"text": "a2"}])).await;
        assert_eq!(status, StatusCode::CREATED, "{reply}");
        assert_eq!(reply["task_count"], 2);
        assert_eq!(server.task_total(project).await, 2);

        let (status, reply) = server.post_json(&path, json!({"text": "single"})).await;
        assert_eq!(status, StatusCode::CREATED, "{reply}");
        assert_eq!(reply["task_count"], 1);

        assert_eq!(
            import_raw(
                &server,
                project,
                "application/x-ndjson",
                "{\"text\":\"l1\"}\n{\"text\":\"l2\"}\n"
            )
            .await,
            2
        );
        assert_eq!(
            import_raw(
                &server,
                project,
                "application/json",
                "{\"text\":\"j1\"}\n{\"text\":\"j2\"}\n{\"text\":\"j3\"}\n"
            )
            .await,
            3
        );
        // Two JSON lines without a final newline are JSON Lines too.
        assert_eq!(
            import_raw(
                &server,
                project,
                "application/json",
                "{\"text\":\"k1\"}\n{\"text\":\"k2\"}"
            )
            .await,
            2
        );
        assert_eq!(
            import_raw(&server, project, "text/csv", "text,label\nc1,x\n\"c2, quoted\",y\n").await,
            2
        );
        assert_eq!(
            import_raw(&server, project, "text/tab-separated-values", "text\tlabel\nt1\tx\n").await,
            1
        );
        assert_eq!(import_raw(&server, project, "text/plain", "p1\n\np2\n").await, 2);
        assert_eq!(server.task_total(project).await, 15);

        let data = all_data(&server, project).await;
        let texts: Vec<&str> = data.iter().map(|d| d["text"].as_str().unwrap()).collect();
        assert_eq!(
            texts,
            [
                "a1",
                "a2",
                "single",
                "l1",
                "l2",
                "j1",
                "j2",
                "j3",
                "k1",
                "k2",
                "c1",
                "c2, quoted",
                "t1",
                "p1",
                "p2"
            ]
        );
        assert_eq!(data[10], json!({"text": "c1", "label": "x"}));
        assert_eq!(data[12], json!({"text": "t1", "label": "x"}));
        // Plain text shows under the configuration's first variable.
        assert_eq!(data[13], json!({"text": "p1"}));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploaded_files_of_every_type_import() {
    for_each_engine(|server| async move {
        let project = server.project("Files", TEXT_CONFIG).await;
        let path = format!("/api/projects/{project}/import?return_task_ids=true");
        let cases: [(&str, &str, i64); 5] = [
            ("tasks.json", r#"[{"text": "json1"}, {"text": "json2"}]"#, 2),
            ("tasks.csv", "text,label\ncsv1,a\ncsv2,b\ncsv3,c\n", 3),
            ("tasks.tsv", "text\tlabel\ntsv1\ta\n", 1),
            ("tasks.txt", "txt1\ntxt2\n", 2),
            ("tasks.jsonl", "{\"text\": \"jl1\"}\n{\"text\": \"jl2\"}\n", 2),
        ];
        let mut total = 0;
        for (name, contents, expected) in cases {
            let (status, reply) = server.post_files(&path, &[(name, contents)]).await;
            assert_eq!(status, StatusCode::CREATED, "{name}: {reply}");
            assert_eq!(reply["task_count"], expected, "{name}: {reply}");
            assert_eq!(reply["task_ids"].as_array().unwrap().len() as i64, expected);
            total += expected;
            assert_eq!(server.task_total(project).await, total, "{name}");
        }
        let (status, reply) = server
            .post_files(
                &path,
                &[("one.json", r#"[{"text": "two1"}]"#), ("two.txt", "two2\ntwo3\n")],
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{reply}");
        assert_eq!(reply["task_count"], 3, "{reply}");
        assert_eq!(server.task_total(project).await, total + 3);

        let txt_task = reply["task_ids"][1].as_i64().unwrap();
        assert_eq!(server.task(txt_task).await["data"], json!({"text": "two2"}));
        let texts: Vec<String> = all_data(&server, project)
            .await
            .iter()
            .map(|d| d["text"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            texts,
            [
                "json1", "json2", "csv1", "csv2", "csv3", "tsv1", "txt1", "txt2", "jl1", "jl2", "two1", "two2", "two3"
            ]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_ids_are_returned_on_request_and_a_dry_run_creates_nothing() {
    for_each_engine(|server| async move {
        let project = server.project("Options", TEXT_CONFIG).await;
        let (status, reply) = server
            .post_json(
                &format!("/api/projects/{project}/import?return_task_ids=true"),
                json!([{"text": "x0"}, {"text": "x1"}, {"text": "x2"}]),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{reply}");
        let ids = reply["task_ids"].as_array().unwrap();
        assert_eq!(ids.len(), 3);
        for (index, id) in ids.iter().enumerate() {
            let task = server.task(id.as_i64().unwrap()).await;
            assert_eq!(task["data"]["text"], format!("x{index}"));
            assert_eq!(task["project"], project);
        }

        let (status, reply) = server
            .post_json(&format!("/api/projects/{project}/import"), json!([{"text": "y"}]))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{reply}");
        assert!(reply.get("task_ids").is_none(), "{reply}");

        let (status, reply) = server
            .post_json(
                &format!("/api/projects/{project}/import?commit_to_project=false"),
                json!([{"text": "dry1"}, {"text": "dry2"}]),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{reply}");
        assert_eq!(reply["task_count"], 2);
        assert_eq!(server.task_total(project).await, 4);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_annotations_and_predictions_are_created_with_counters() {
    for_each_engine(|server| async move {
        let project = server.project("Nested", TEXT_CONFIG).await;
        let (status, reply) = server
            .post_json(
                &format!("/api/projects/{project}/import?return_task_ids=true"),
                json!([
                    {
                        "data": {"text": "labeled"},
                        "annotations": [{"result": [choice_result("cat")]}],
                        "predictions": [{"result": [], "score": 0.5}]
                    },
                    {"data": {"text": "predicted"}, "predictions": [{"result": [choice_result("dog")], "score": 0.25, "model_version": "m1"}]},
                    {"text": "plain"}
                ]),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{reply}");
        assert_eq!(reply["task_count"], 3);
        assert_eq!(reply["annotation_count"], 1);
        assert_eq!(reply["predictions_count"], 2);
        let ids: Vec<i64> = reply["task_ids"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();

        let labeled = server.task(ids[0]).await;
        assert_eq!(labeled["data"], json!({"text": "labeled"}));
        assert_eq!(labeled["total_annotations"], 1, "{labeled}");
        assert_eq!(labeled["is_labeled"], true);
        assert_eq!(labeled["total_predictions"], 1);
        assert_eq!(labeled["annotations"].as_array().unwrap().len(), 1);
        assert_eq!(labeled["annotations"][0]["result"], json!([choice_result("cat")]));
        assert_eq!(labeled["annotations"][0]["completed_by"], server.user_id);
        assert_eq!(labeled["predictions"][0]["score"], 0.5);

        let predicted = server.task(ids[1]).await;
        assert_eq!((&predicted["total_annotations"], &predicted["is_labeled"]), (&json!(0), &json!(false)));
        assert_eq!(predicted["total_predictions"], 1);
        assert_eq!(predicted["predictions"][0]["model_version"], "m1");

        let plain = server.task(ids[2]).await;
        assert_eq!((&plain["total_annotations"], &plain["total_predictions"]), (&json!(0), &json!(0)));

        let (_, page) = server.get(&format!("/api/tasks/?project={project}")).await;
        assert_eq!((&page["total_annotations"], &page["total_predictions"]), (&json!(1), &json!(2)), "{page}");
        let (_, counts) = server.get(&format!("/api/projects/{project}/")).await;
        assert_eq!(counts["total_annotations_number"], 1);
        assert_eq!(counts["total_predictions_number"], 2);
    })
    .await;
}
