//! The web UI's server side: pages need a browser session (else a redirect to sign in that comes
//! back), the page scripts are served from the binary, and the endpoints only the UI uses
//! (token reset, task neighbours, next task to label) keep to the caller's organization.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION, SET_COOKIE};
use serde_json::json;

use crate::harness::{Server, assert_error, for_each_engine};

/// Signs a new user in with a password and returns the session cookie (`name=value`).
async fn browser_session(server: &Server, email: &str) -> String {
    labelport::server::create_user(&server.db, email, Some("pages-password"), None)
        .await
        .unwrap();
    let response = reqwest::Client::new()
        .post(format!("{}/user/login", server.base))
        .json(&json!({"email": email, "password": "pages-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let set_cookie = response.headers()[SET_COOKIE].to_str().unwrap();
    set_cookie.split(';').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_send_signed_out_browsers_to_sign_in_and_back() {
    for_each_engine(|server| async move {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let get = |path: &str, cookie: Option<&str>| {
            let request = http.get(format!("{}{path}", server.base));
            match cookie {
                Some(cookie) => request.header("Cookie", cookie.to_string()).send(),
                None => request.send(),
            }
        };
        for path in [
            "/projects",
            "/projects/7/data?page=2",
            "/projects/7/settings/storage",
            "/projects/7/label?task=3",
            "/user/account",
        ] {
            let response = get(path, None).await.unwrap();
            assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
            let location = response.headers()[LOCATION].to_str().unwrap().to_string();
            let next: String =
                percent_encoding::utf8_percent_encode(path, percent_encoding::NON_ALPHANUMERIC).collect();
            assert_eq!(location, format!("/user/login?next={next}"), "{path}");
        }
        // A token is not a browser session: pages still ask to sign in.
        let with_token = http
            .get(format!("{}/projects", server.base))
            .header("Authorization", format!("Token {}", "x".repeat(40)))
            .send()
            .await
            .unwrap();
        assert_eq!(with_token.status(), StatusCode::SEE_OTHER);
        let stale = get("/projects", Some("labelport_session=not-a-session")).await.unwrap();
        assert_eq!(stale.status(), StatusCode::SEE_OTHER);

        let login = get("/user/login", None).await.unwrap();
        assert_eq!(login.status(), StatusCode::OK);
        assert!(login.text().await.unwrap().contains(r#"data-page="login""#));

        let cookie = browser_session(&server, "pages@example.com").await;
        for (path, page) in [
            ("/projects", "projects"),
            ("/projects/7/data", "data"),
            ("/projects/7/settings/storage", "storage"),
            ("/projects/7/label?task=3", "label"),
            ("/user/account", "account"),
        ] {
            let response = get(path, Some(&cookie)).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(response.headers()["x-frame-options"], "DENY");
            let policy = response.headers()["content-security-policy"].to_str().unwrap();
            assert!(policy.contains("script-src 'self'"), "{policy}");
            let html = response.text().await.unwrap();
            assert!(html.contains(&format!(r#"data-page="{page}""#)), "{path}: {html}");
        }
        // Signed in, the sign-in page and the root go to the projects.
        for path in ["/user/login", "/"] {
            let response = get(path, Some(&cookie)).await.unwrap();
            assert!(response.status().is_redirection(), "{path}");
            assert_eq!(response.headers()[LOCATION], "/projects", "{path}");
        }
        // Without a front-end folder the labeling page does not ask for the editor's files.
        let label = get("/projects/7/label?task=3", Some(&cookie))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!label.contains("/static/editor/main.js"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_script_and_styles_are_served_from_the_binary() {
    for_each_engine(|server| async move {
        let http = reqwest::Client::new();
        for (path, content_type, marker) in [
            ("/static/app/app.js", "text/javascript", "function loginPage"),
            ("/static/app/app.css", "text/css", ".topbar"),
        ] {
            let response = http.get(format!("{}{path}", server.base)).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert!(
                response.headers()[CONTENT_TYPE]
                    .to_str()
                    .unwrap()
                    .starts_with(content_type)
            );
            assert!(response.text().await.unwrap().contains(marker), "{path}");
        }
        // No front-end folder configured: its paths are simply not there.
        let editor = http
            .get(format!("{}/static/editor/main.js", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(editor.status(), StatusCode::NOT_FOUND);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resetting_the_token_replaces_every_old_token() {
    for_each_engine(|server| async move {
        let (status, body) = server.post_json("/api/current-user/reset-token", json!({})).await;
        assert_eq!(status, StatusCode::OK);
        let token = body["token"].as_str().unwrap().to_string();
        assert_eq!(token.len(), 40);
        let (old, _) = server.get("/api/current-user/whoami").await;
        assert_eq!(old, StatusCode::UNAUTHORIZED, "the old token no longer works");
        let (new, me) = server
            .anonymous()
            .get_with_authorization("/api/current-user/whoami", &format!("Token {token}"))
            .await;
        assert_eq!(new, StatusCode::OK);
        assert_eq!(me["id"], server.user_id);
        assert_error(
            &server
                .anonymous()
                .post_json("/api/current-user/reset-token", json!({}))
                .await,
            StatusCode::UNAUTHORIZED,
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neighbours_and_the_next_task_to_label_follow_task_order_within_the_project() {
    for_each_engine(|server| async move {
        let config =
            r#"<View><Text name="t" value="$text"/><Choices name="c" toName="t"><Choice value="a"/></Choices></View>"#;
        let project = server.project("order", config).await;
        let other = server.project("other", config).await;
        let first = server.import(project, json!([{"text": "1"}, {"text": "2"}])).await;
        server.import(other, json!([{"text": "elsewhere"}])).await;
        let last = server.import(project, json!([{"text": "3"}])).await;
        let ids = [first[0], first[1], last[0]];

        let neighbors = |id: i64| {
            let server = &server;
            async move { server.get(&format!("/api/tasks/{id}/neighbors")).await }
        };
        assert_eq!(neighbors(ids[0]).await.1, json!({"previous": null, "next": ids[1]}));
        // The other project's task, created between them, is not a neighbour.
        assert_eq!(neighbors(ids[1]).await.1, json!({"previous": ids[0], "next": ids[2]}));
        assert_eq!(neighbors(ids[2]).await.1, json!({"previous": ids[1], "next": null}));

        let next = |after: Option<i64>| {
            let server = &server;
            async move {
                let query = after.map(|a| format!("?after={a}")).unwrap_or_default();
                server.get(&format!("/api/projects/{project}/next{query}")).await
            }
        };
        assert_eq!(next(None).await.1["id"], ids[0]);
        server.annotate(ids[0], "a").await;
        let (_, task) = next(None).await;
        assert_eq!(task["id"], ids[1], "labeled tasks are passed over");
        assert_eq!(task["data"]["text"], "2");
        assert_eq!(next(Some(ids[1])).await.1["id"], ids[2]);
        server.annotate(ids[2], "a").await;
        assert_eq!(next(Some(ids[2])).await.1["id"], ids[1], "the search wraps round");
        server.annotate(ids[1], "a").await;
        assert_error(&next(None).await, StatusCode::NOT_FOUND);

        // With two annotations wanted per task, a task one user has annotated is still to be
        // labeled, but not by that user.
        let (status, shared) = server
            .post_json(
                "/api/projects",
                json!({"title": "overlap", "label_config": config, "maximum_annotations": 2}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{shared}");
        let shared = shared["id"].as_i64().unwrap();
        let tasks = server.import(shared, json!([{"text": "x"}, {"text": "y"}])).await;
        server.annotate(tasks[0], "a").await;
        let (_, mine) = server.get(&format!("/api/projects/{shared}/next")).await;
        assert_eq!(mine["id"], tasks[1]);
        let colleague = server.user("colleague@example.com", None).await;
        let (_, theirs) = colleague.get(&format!("/api/projects/{shared}/next")).await;
        assert_eq!(theirs["id"], tasks[0], "the colleague still has the first task to do");

        // Another organization sees neither.
        let stranger = server.user("stranger@example.com", Some("Elsewhere")).await;
        assert_error(
            &stranger.get(&format!("/api/tasks/{}/neighbors", ids[0])).await,
            StatusCode::NOT_FOUND,
        );
        assert_error(
            &stranger.get(&format!("/api/projects/{project}/next")).await,
            StatusCode::NOT_FOUND,
        );
    })
    .await;
}
