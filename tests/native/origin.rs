//! The origin app, driven with `oneshot`.

use crate::harness::{site_dir, TestOrigin};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use sha2::{Digest, Sha256};

#[tokio::test]
async fn pages_have_validators_and_answer_304() {
    let o = TestOrigin::new(false);
    let (res, body) = o.get("/").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert_eq!(res.headers()["cache-control"], "public, max-age=60");
    assert!(String::from_utf8_lossy(&body).contains("<pre>"));
    let etag = res.headers()["etag"].clone();
    let last_modified = res.headers()["last-modified"].clone();

    let req = Request::get("/").header("if-none-match", etag.clone()).body(Body::empty()).unwrap();
    let (res, body) = o.send(req).await;
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    assert_eq!(res.headers()["etag"], etag);

    let req = Request::get("/").header("if-modified-since", last_modified).body(Body::empty()).unwrap();
    assert_eq!(o.send(req).await.0.status(), StatusCode::NOT_MODIFIED);
    let req = Request::get("/").header("if-none-match", "\"other\"").body(Body::empty()).unwrap();
    assert_eq!(o.send(req).await.0.status(), StatusCode::OK);
}

#[tokio::test]
async fn head_has_length_and_no_body() {
    let o = TestOrigin::new(false);
    let (get, get_body) = o.get("/img/coffee.jpg").await;
    let (res, body) = o.send(Request::head("/img/coffee.jpg").body(Body::empty()).unwrap()).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(body.is_empty());
    assert_eq!(res.headers()["content-length"], get_body.len().to_string().as_str());
    assert_eq!(res.headers()["etag"], get.headers()["etag"]);
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    assert_eq!(res.headers()["cache-control"], "public, max-age=86400");
}

#[tokio::test]
async fn hashed_assets_are_immutable_and_named_by_their_bytes() {
    let o = TestOrigin::new(false);
    let mut checked = 0;
    for entry in std::fs::read_dir(site_dir().join("static")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let hash = name.split('.').nth(1).unwrap();
        let digest: String = Sha256::digest(std::fs::read(&path).unwrap()).iter().map(|b| format!("{b:02x}")).collect();
        assert!(digest.starts_with(hash), "{name}: content hash is {}", &digest[..8]);
        let (res, _) = o.get(&format!("/static/{name}")).await;
        assert_eq!(res.headers()["cache-control"], "public, max-age=31536000, immutable", "{name}");
        checked += 1;
    }
    assert!(checked >= 2);
}

#[tokio::test]
async fn pretty_urls_404_and_405() {
    let o = TestOrigin::new(false);
    assert_eq!(o.get("/tasks").await.0.status(), StatusCode::OK);
    assert_eq!(o.get("/about").await.0.status(), StatusCode::OK);
    let (res, body) = o.get("/nope").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(String::from_utf8_lossy(&body).contains("Not found"));
    let (res, body) = o.json("POST", "/", "{}").await;
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(res.headers()["allow"], "GET, HEAD");
    assert_eq!(body["status"], 405);
}

#[tokio::test]
async fn tasks_crud_and_persistence() {
    let mut o = TestOrigin::new(false);
    let (res, list) = o.json("GET", "/api/tasks", "").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(list, serde_json::json!([]));

    let (res, task) = o.json("POST", "/api/tasks", r#"{"title":"  write tests  "}"#).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(task["title"], "write tests");
    assert_eq!(task["done"], false);
    let id = task["id"].as_i64().unwrap();
    assert_eq!(res.headers()["location"], format!("/api/tasks/{id}").as_str());

    let (res, got) = o.json("GET", &format!("/api/tasks/{id}"), "").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(got, task);
    assert!(res.headers().contains_key("etag") && res.headers().contains_key("last-modified"));

    let (res, updated) = o.json("PATCH", &format!("/api/tasks/{id}"), r#"{"done":true}"#).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(updated["done"], true);
    assert_eq!(updated["title"], "write tests");
    let (_, updated) = o.json("PUT", &format!("/api/tasks/{id}"), r#"{"title":"renamed"}"#).await;
    assert_eq!(updated["title"], "renamed");

    o.restart();
    let (_, list) = o.json("GET", "/api/tasks", "").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "writes survive a restart");
    assert_eq!(list[0]["title"], "renamed");

    let (res, _) = o.json("DELETE", &format!("/api/tasks/{id}"), "").await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (res, body) = o.json("GET", &format!("/api/tasks/{id}"), "").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(body["status"], 404);
}

#[tokio::test]
async fn api_list_etag_changes_with_writes() {
    let o = TestOrigin::new(false);
    let (res, _) = o.json("GET", "/api/tasks", "").await;
    let etag = res.headers()["etag"].clone();
    let req = Request::get("/api/tasks").header("if-none-match", etag.clone()).body(Body::empty()).unwrap();
    assert_eq!(o.send(req).await.0.status(), StatusCode::NOT_MODIFIED);
    o.json("POST", "/api/tasks", r#"{"title":"x"}"#).await;
    let req = Request::get("/api/tasks").header("if-none-match", etag).body(Body::empty()).unwrap();
    assert_eq!(o.send(req).await.0.status(), StatusCode::OK);
}

#[tokio::test]
async fn bad_api_input_is_a_4xx_json_error() {
    let o = TestOrigin::new(false);
    let big = format!(r#"{{"title":"{}"}}"#, "x".repeat(4096));
    let cases: Vec<(&str, &str, String, StatusCode)> = vec![
        ("POST", "/api/tasks", "{not json".into(), StatusCode::BAD_REQUEST),
        ("POST", "/api/tasks", r#"{"done":true}"#.into(), StatusCode::UNPROCESSABLE_ENTITY),
        ("POST", "/api/tasks", r#"{"title":"   "}"#.into(), StatusCode::UNPROCESSABLE_ENTITY),
        ("POST", "/api/tasks", r#"{"title":"a","extra":1}"#.into(), StatusCode::UNPROCESSABLE_ENTITY),
        ("POST", "/api/tasks", big, StatusCode::PAYLOAD_TOO_LARGE),
        ("GET", "/api/tasks/abc", String::new(), StatusCode::BAD_REQUEST),
        ("GET", "/api/tasks/-1", String::new(), StatusCode::BAD_REQUEST),
        ("GET", "/api/tasks/999", String::new(), StatusCode::NOT_FOUND),
        ("PUT", "/api/tasks/999", r#"{"title":"a"}"#.into(), StatusCode::NOT_FOUND),
        ("DELETE", "/api/tasks/999", String::new(), StatusCode::NOT_FOUND),
    ];
    for (method, uri, body, want) in cases {
        let (res, json) = o.json(method, uri, &body).await;
        assert_eq!(res.status(), want, "{method} {uri} {body:.40}");
        assert_eq!(json["status"], want.as_u16(), "{method} {uri}");
        assert!(json["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    let req = Request::post("/api/tasks").header("content-type", "text/plain").body(Body::from("x")).unwrap();
    assert_eq!(o.send(req).await.0.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn lab_routes_set_status_headers_and_count_hits() {
    let o = TestOrigin::new(true);
    let (res, body) = o.get("/lab/a?status=418&header=X-Test:%20yes&header=Cache-Control:max-age=5").await;
    assert_eq!(res.status(), StatusCode::IM_A_TEAPOT);
    assert_eq!(res.headers()["x-test"], "yes");
    assert_eq!(res.headers()["cache-control"], "max-age=5");
    let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(echo["hits"], 1);
    o.get("/lab/a").await;
    let (_, hits) = o.json("GET", "/_lab/hits?path=/lab/a", "").await;
    assert_eq!(hits["hits"], 2);

    let (res, body) = o.get("/lab/b?body=hello&header=ETag:%22v1%22").await;
    assert_eq!(body, b"hello");
    assert_eq!(res.headers()["etag"], "\"v1\"");
    let req = Request::get("/lab/b?body=hello&header=ETag:%22v1%22").header("if-none-match", "\"v1\"").body(Body::empty()).unwrap();
    assert_eq!(o.send(req).await.0.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(o.get("/lab/x?status=99").await.0.status(), StatusCode::BAD_REQUEST);
    assert_eq!(o.get("/lab/f?after=1&then_status=503").await.0.status(), StatusCode::OK);
    assert_eq!(o.get("/lab/f?after=1&then_status=503").await.0.status(), StatusCode::SERVICE_UNAVAILABLE);
    let url = "/lab/g?header=Cache-Control:no-store&after=1&then_header=Cache-Control:max-age=60";
    assert_eq!(o.get(url).await.0.headers()["cache-control"], "no-store");
    assert_eq!(o.get(url).await.0.headers()["cache-control"], "max-age=60");

    let without = TestOrigin::new(false);
    assert_eq!(without.get("/lab/a").await.0.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn healthz_and_metrics() {
    let o = TestOrigin::new(false);
    let (res, body) = o.json("GET", "/healthz", "").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body["status"], "ok");
    o.json("GET", "/api/tasks", "").await;
    o.get("/").await;
    let (res, body) = o.get("/metrics").await;
    assert_eq!(res.status(), StatusCode::OK);
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains(r#"origin_http_requests_total{method="GET",route="/api/tasks",status="200"} 1"#), "{text}");
    assert!(text.contains(r#"origin_http_requests_total{method="GET",route="static",status="200"} 1"#), "{text}");
    assert!(text.contains(r#"origin_http_request_duration_seconds_bucket{route="static",le="+Inf"} 1"#), "{text}");
    assert!(text.contains(r#"origin_sqlite_query_duration_seconds_count{query="list"} 1"#), "{text}");
}

/// Over a real socket, as hyper serves it: an answer given before a large body was read says
/// `Connection: close`, and the socket is then closed; a request whose body was read keeps the
/// connection for the next one. Without the header a keep-alive client (the Workers runtime)
/// reused the closing socket and lost its next request.
#[tokio::test]
async fn an_answer_before_the_body_is_read_closes_the_connection_and_says_so() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let o = TestOrigin::new(false);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(std::future::IntoFuture::into_future(axum::serve(listener, o.router.clone())));
    let exchange = |head: String, body: Vec<u8>| async move {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(head.as_bytes()).await.expect("write head");
        // The origin may close before it has all of the body: that is the point.
        let _ = s.write_all(&body).await;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let closed = loop {
            match tokio::time::timeout(std::time::Duration::from_millis(500), s.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => break true,
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
                Err(_) => break false,
            }
        };
        (String::from_utf8_lossy(&got).to_ascii_lowercase(), closed)
    };
    let big = 256 << 10;
    let (head, closed) = exchange(format!("PROPFIND / HTTP/1.1\r\nhost: o\r\ncontent-length: {big}\r\n\r\n"), vec![b'b'; big]).await;
    assert!(head.starts_with("http/1.1 405"), "{head}");
    assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
    assert!(closed, "the origin closes the connection it said it would");
    let json = br#"{"title":"kept"}"#;
    let (head, closed) = exchange(format!("POST /api/tasks HTTP/1.1\r\nhost: o\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", json.len()), json.to_vec()).await;
    assert!(head.starts_with("http/1.1 201"), "{head}");
    assert!(!head.contains("connection: close") && !closed, "a body read to its end keeps the connection: {head}");
}
