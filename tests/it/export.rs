//! `GET /api/projects/{id}/export`: JSON, JSON_MIN and CSV, filters, and large projects.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Server, TEXT_CONFIG, assert_error, for_each_engine};

/// Exports and parses a JSON array, asserting 200.
async fn export_json(server: &Server, project: i64, query: &str) -> Vec<Value> {
    let (status, text) = server
        .get_text(&format!("/api/projects/{project}/export?{query}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{query}: {text}");
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(items)) => items,
        other => panic!("{query}: the export is not a JSON array: {other:?}"),
    }
}

fn ids(items: &[Value]) -> Vec<i64> {
    items.iter().map(|t| t["id"].as_i64().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_filter_and_shape_tasks() {
    for_each_engine(|server| async move {
        let project = server.project("Exported", TEXT_CONFIG).await;
        let tasks = server
            .import(
                project,
                json!([{"text": "a"}, {"text": "b"}, {"text": "c"}, {"text": "d"}]),
            )
            .await;
        server.annotate(tasks[0], "cat").await;
        server.annotate(tasks[0], "dog").await;
        server.annotate(tasks[2], "cat").await;

        for query in ["exportType=JSON", "export_type=JSON", ""] {
            let items = export_json(&server, project, query).await;
            assert_eq!(ids(&items), [tasks[0], tasks[2]], "{query}");
            assert_eq!(items[0]["data"], json!({"text": "a"}));
            assert_eq!(items[0]["annotations"].as_array().unwrap().len(), 2);
            assert_eq!(
                items[0]["annotations"][1]["result"][0]["value"]["choices"],
                json!(["dog"])
            );
        }
        let all = export_json(&server, project, "exportType=JSON&download_all_tasks=true").await;
        assert_eq!(ids(&all), tasks);
        let one = export_json(&server, project, &format!("exportType=JSON&ids={}", tasks[2])).await;
        assert_eq!(ids(&one), [tasks[2]]);
        let one = export_json(
            &server,
            project,
            &format!("exportType=JSON&download_all_tasks=true&ids={}", tasks[1]),
        )
        .await;
        assert_eq!(ids(&one), [tasks[1]]);

        let rows = export_json(&server, project, "exportType=JSON_MIN").await;
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert_eq!(rows[0]["text"], "a");
        assert_eq!(rows[0]["choice"], "cat");
        assert_eq!(rows[1]["choice"], "dog");
        assert_eq!(rows[2]["text"], "c");
        assert_eq!(rows[2]["choice"], "cat");
        assert_eq!(rows[2]["id"], tasks[2]);

        let (status, text) = server
            .get_text(&format!("/api/projects/{project}/export?exportType=CSV"))
            .await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
        let text_column = header
            .iter()
            .position(|h| h == "text")
            .unwrap_or_else(|| panic!("{header:?}"));
        let choice_column = header
            .iter()
            .position(|h| h == "choice")
            .unwrap_or_else(|| panic!("{header:?}"));
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(records.len(), 3, "{text}");
        let cells: Vec<(&str, &str)> = records.iter().map(|r| (&r[text_column], &r[choice_column])).collect();
        assert_eq!(cells, [("a", "cat"), ("a", "dog"), ("c", "cat")]);

        let unknown = server
            .get(&format!("/api/projects/{project}/export?exportType=COCO"))
            .await;
        assert_error(&unknown, StatusCode::BAD_REQUEST);
        assert_error(
            &server.get("/api/projects/987654321/export?exportType=JSON").await,
            StatusCode::NOT_FOUND,
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_of_projects_larger_than_a_page_are_complete() {
    for_each_engine(|server| async move {
        let project = server.project("Large export", TEXT_CONFIG).await;
        let items: Vec<Value> = (0..1200).map(|i| json!({"text": format!("t{i}")})).collect();
        let tasks = server.import(project, Value::Array(items)).await;
        assert_eq!(tasks.len(), 1200);
        // Labeled tasks on both sides of the page boundary.
        for index in [0, 499, 500, 1199] {
            server.annotate(tasks[index], "cat").await;
        }

        let all = export_json(&server, project, "exportType=JSON&download_all_tasks=true").await;
        assert_eq!(ids(&all), tasks);
        assert_eq!(all[1199]["data"]["text"], "t1199");
        assert_eq!(all[500]["annotations"].as_array().unwrap().len(), 1);

        let labeled = export_json(&server, project, "exportType=JSON").await;
        assert_eq!(ids(&labeled), [tasks[0], tasks[499], tasks[500], tasks[1199]]);

        let rows = export_json(&server, project, "exportType=JSON_MIN&download_all_tasks=true").await;
        assert_eq!(rows.len(), 1200);

        let (status, text) = server
            .get_text(&format!(
                "/api/projects/{project}/export?exportType=CSV&download_all_tasks=true"
            ))
            .await;
        assert_eq!(status, StatusCode::OK);
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        assert!(reader.headers().unwrap().iter().any(|h| h == "choice"));
        assert_eq!(reader.records().map(Result::unwrap).count(), 1200);
    })
    .await;
}
