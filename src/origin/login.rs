//! `POST /login`: the demo's sign-in, so the shipped `login` rate-limit policy has something real
//! to protect (credential stuffing: only failed sign-ins spend quota). One demo account,
//! `demo` / `demo-password`, compared in constant time. Form or JSON bodies; 200 with a session
//! cookie, 401 otherwise, 400 for a body that is neither.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use subtle::ConstantTimeEq;

/// The demo account.
pub const DEMO_USER: &str = "demo";
/// Its password.
pub const DEMO_PASSWORD: &str = "demo-password";

#[derive(Deserialize)]
struct Credentials {
    user: String,
    password: String,
}

/// Checks the credentials in a form or JSON body.
pub async fn login(headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let json = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| t.starts_with("application/json"));
    let parsed: Option<Credentials> = if json {
        serde_json::from_slice(&body).ok()
    } else {
        let field = |name: &str| form_urlencoded::parse(&body).find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
        field("user").zip(field("password")).map(|(user, password)| Credentials { user, password })
    };
    let Some(c) = parsed else {
        return (StatusCode::BAD_REQUEST, [(header::CACHE_CONTROL, "no-store")], Json(serde_json::json!({ "error": "send user and password, as a form or JSON" }))).into_response();
    };
    let ok = c.user.as_bytes().ct_eq(DEMO_USER.as_bytes()) & c.password.as_bytes().ct_eq(DEMO_PASSWORD.as_bytes());
    if bool::from(ok) {
        let cookie = "session=demo-session; Path=/; HttpOnly; SameSite=Lax";
        (StatusCode::OK, [(header::CACHE_CONTROL, "no-store"), (header::SET_COOKIE, cookie)], Json(serde_json::json!({ "ok": true }))).into_response()
    } else {
        (StatusCode::UNAUTHORIZED, [(header::CACHE_CONTROL, "no-store")], Json(serde_json::json!({ "error": "wrong user or password" }))).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::post;
    use axum::Router;
    use tower::ServiceExt;

    async fn status(content_type: &str, body: &str) -> StatusCode {
        let app = Router::new().route("/login", post(login));
        let req = axum::http::Request::post("/login").header("content-type", content_type).body(Body::from(body.to_owned())).unwrap();
        app.oneshot(req).await.unwrap().status()
    }

    #[tokio::test]
    async fn demo_account_form_and_json() {
        assert_eq!(status("application/x-www-form-urlencoded", "user=demo&password=demo-password").await, StatusCode::OK);
        assert_eq!(status("application/x-www-form-urlencoded", "user=demo&password=guess").await, StatusCode::UNAUTHORIZED);
        assert_eq!(status("application/json", r#"{"user":"demo","password":"demo-password"}"#).await, StatusCode::OK);
        assert_eq!(status("application/json", "{").await, StatusCode::BAD_REQUEST);
    }
}
