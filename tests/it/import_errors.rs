//! Imports that fail import nothing, say where the problem is, and bodies over the limit are 413.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{TEXT_CONFIG, assert_error, for_each_engine, for_each_engine_with, non_field_error};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_item_imports_nothing_and_names_its_place() {
    for_each_engine(|server| async move {
        let project = server.project("Errors", TEXT_CONFIG).await;
        server.import(project, json!([{"text": "kept"}])).await;
        let path = format!("/api/projects/{project}/import");

        let cases: [(&str, &str, &str); 7] = [
            ("application/json", "[\n{\"text\": \"a\"},\n{\"text\": }\n]", "line 3"),
            (
                "application/x-ndjson",
                "{\"text\": \"a\"}\n{\"text\": \"b\"}\n{\"text\": oops}\n",
                "line 3",
            ),
            (
                "application/json",
                "{\"text\": \"a\"}\n{\"text\": \"b\"}\n{\"text\": oops}\n",
                "line 3",
            ),
            ("text/csv", "text,label\na,b\nc,d,e\n", "row 3"),
            (
                "text/tab-separated-values",
                "text\tlabel\na\tb\nc\td\n\te\tf\n",
                "row 4",
            ),
            ("application/json", "[{\"text\": \"a\"}, 5]", "item 1"),
            (
                "application/json",
                "[{\"text\": \"a\"}, {\"annotations\": [{\"result\": []}]}]",
                "item 1",
            ),
        ];
        for (content_type, body, place) in cases {
            let reply = server.post_raw(&path, content_type, body).await;
            let message = non_field_error(&reply);
            assert!(
                message.contains(place),
                "{content_type} {body:?}: {message:?} does not name {place}"
            );
            assert_eq!(
                server.task_total(project).await,
                1,
                "{content_type} {body:?} imported something"
            );
        }
        let reply = server
            .post_raw(&path, "application/json", "[{\"text\": \"a\"}, 5]")
            .await;
        assert!(non_field_error(&reply).contains("item"));

        // The same errors in uploaded files.
        let reply = server
            .post_files(
                &path,
                &[("good.json", "[{\"text\": \"g\"}]"), ("bad.csv", "text,label\na,b,c\n")],
            )
            .await;
        let message = non_field_error(&reply);
        assert!(message.contains("bad.csv") && message.contains("row 2"), "{message}");
        assert_eq!(server.task_total(project).await, 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_item_after_several_written_batches_imports_nothing() {
    for_each_engine(|server| async move {
        let project = server.project("Big errors", TEXT_CONFIG).await;
        server
            .import(project, json!([{"text": "kept"}, {"text": "kept too"}]))
            .await;
        let path = format!("/api/projects/{project}/import");

        // 4500 good items (two full batches of 2000 are written) and then a number.
        let mut items: Vec<Value> = (0..4500).map(|i| json!({"text": format!("t{i}")})).collect();
        items.push(json!(5));
        let reply = server.post_json(&path, Value::Array(items)).await;
        let message = non_field_error(&reply);
        assert!(message.contains("item 4500"), "{message}");
        assert_eq!(server.task_total(project).await, 2);

        // The same as JSON Lines, with the bad line last.
        let mut lines: String = (0..4500).map(|i| format!("{{\"text\": \"l{i}\"}}\n")).collect();
        lines.push_str("{\"text\": }\n");
        let reply = server.post_raw(&path, "application/x-ndjson", lines).await;
        let message = non_field_error(&reply);
        assert!(message.contains("line 4501"), "{message}");
        assert_eq!(server.task_total(project).await, 2);

        // And as CSV.
        let mut csv = String::from("text,label\n");
        csv.extend((0..2500).map(|i| format!("c{i},x\n")));
        csv.push_str("bad,x,y\n");
        let reply = server.post_raw(&path, "text/csv", csv).await;
        let message = non_field_error(&reply);
        assert!(message.contains("row 2502"), "{message}");
        assert_eq!(server.task_total(project).await, 2);

        // A dry run of a good large body counts but keeps nothing either.
        let items: Vec<Value> = (0..2500).map(|i| json!({"text": format!("d{i}")})).collect();
        let (status, reply) = server
            .post_json(&format!("{path}?commit_to_project=false"), Value::Array(items))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{reply}");
        assert_eq!(reply["task_count"], 2500);
        assert_eq!(server.task_total(project).await, 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_are_413_and_import_nothing() {
    for_each_engine_with(1024, |server| async move {
        let project = server.project("Limited", TEXT_CONFIG).await;
        let path = format!("/api/projects/{project}/import");
        let (status, reply) = server.post_json(&path, json!([{"text": "small"}])).await;
        assert_eq!(status, StatusCode::CREATED, "{reply}");

        let large: Vec<Value> = (0..200).map(|i| json!({"text": format!("task number {i}")})).collect();
        let large = Value::Array(large);
        assert!(large.to_string().len() > 2048);
        assert_error(
            &server.post_json(&path, large.clone()).await,
            StatusCode::PAYLOAD_TOO_LARGE,
        );
        assert_eq!(server.task_total(project).await, 1);

        let lines: String = (0..200).map(|i| format!("line number {i}\n")).collect();
        assert_error(
            &server.post_raw(&path, "text/plain", lines.clone()).await,
            StatusCode::PAYLOAD_TOO_LARGE,
        );
        assert_error(
            &server.post_files(&path, &[("big.txt", &lines)]).await,
            StatusCode::PAYLOAD_TOO_LARGE,
        );
        assert_eq!(server.task_total(project).await, 1);
    })
    .await;
}
