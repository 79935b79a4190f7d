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
