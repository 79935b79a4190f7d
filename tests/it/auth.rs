//! Authentication, and the error shape of unknown routes.

use reqwest::StatusCode;

use crate::harness::{Reply, assert_error, for_each_engine};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_token_are_401_and_a_token_header_works() {
    for_each_engine(|server| async move {
        let anonymous = server.anonymous();
        let missing = anonymous.get("/api/projects/").await;
        assert_error(&missing, StatusCode::UNAUTHORIZED);
        assert_eq!(missing.1.as_object().unwrap().len(), 5, "{}", missing.1);

        let bad = anonymous
            .get_with_authorization("/api/projects/", "Token not-a-token")
            .await;
        assert_error(&bad, StatusCode::UNAUTHORIZED);
        assert_error(
            &anonymous.get("/api/current-user/whoami/").await,
            StatusCode::UNAUTHORIZED,
        );

        let (status, body) = server.get("/api/projects/").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, me) = server.get("/api/current-user/whoami/").await;
        assert_eq!(status, StatusCode::OK, "{me}");
        assert_eq!(me["email"], "alice@example.com");
        assert_eq!(me["id"], server.user_id);

        let bob = server.user("bob@example.com", None).await;
        let (_, me) = bob.get("/api/current-user/whoami").await;
        assert_eq!(me["email"], "bob@example.com");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_are_404_in_the_error_shape() {
    for_each_engine(|server| async move {
        let reply: Reply = server.get("/api/no-such-thing/").await;
        assert_error(&reply, StatusCode::NOT_FOUND);
        assert_error(&server.anonymous().get("/nothing/here").await, StatusCode::NOT_FOUND);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_sign_in_with_a_password_and_a_session_cookie() {
    for_each_engine(|server| async move {
        labelport::server::create_user(&server.db, "carol@example.com", Some("s3cret-pass"), None)
            .await
            .unwrap();
        let http = reqwest::Client::new();
        let base = server.base.clone();
        let login = |body: &'static str, content_type: &'static str| {
            http.post(format!("{base}/user/login"))
                .header("Content-Type", content_type)
                .body(body)
                .send()
        };

        let wrong = login(
            r#"{"email": "carol@example.com", "password": "nope"}"#,
            "application/json",
        )
        .await
        .unwrap();
        assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
        assert!(
            wrong.headers().get("set-cookie").is_none(),
            "no session for a wrong password"
        );
        let no_password = login(r#"{"email": "alice@example.com", "password": ""}"#, "application/json")
            .await
            .unwrap();
        assert_eq!(
            no_password.status(),
            StatusCode::BAD_REQUEST,
            "a user without a password cannot sign in"
        );

        let signed_in = login(
            "email=carol%40example.com&password=s3cret-pass",
            "application/x-www-form-urlencoded",
        )
        .await
        .unwrap();
        assert_eq!(signed_in.status(), StatusCode::OK);
        let set_cookie = signed_in.headers()["set-cookie"].to_str().unwrap().to_string();
        assert!(
            set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"),
            "{set_cookie}"
        );
        let cookie = set_cookie.split(';').next().unwrap().to_string();
        assert!(cookie.starts_with("labelport_session="), "{cookie}");

        let whoami = |cookie: String| {
            http.get(format!("{base}/api/current-user/whoami"))
                .header("Cookie", cookie)
                .send()
        };
        let me = whoami(cookie.clone()).await.unwrap();
        assert_eq!(me.status(), StatusCode::OK);
        assert_eq!(
            me.json::<serde_json::Value>().await.unwrap()["email"],
            "carol@example.com"
        );

        // Changes by cookie come from this site only.
        let create = |origin: String| {
            http.post(format!("{base}/api/projects/"))
                .header("Cookie", cookie.clone())
                .header("Origin", origin)
                .json(&serde_json::json!({"title": "By cookie"}))
                .send()
        };
        assert_eq!(create(base.clone()).await.unwrap().status(), StatusCode::CREATED);
        assert_eq!(
            create("http://evil.example".to_string()).await.unwrap().status(),
            StatusCode::FORBIDDEN
        );

        let logout = http
            .post(format!("{base}/user/logout"))
            .header("Cookie", cookie.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(logout.status(), StatusCode::NO_CONTENT);
        assert_eq!(whoami(cookie).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    })
    .await;
}
