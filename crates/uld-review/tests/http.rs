//! Every route of the review server and its rules: the token, no paths,
//! size-limited and checked bodies, decisions saved and resumed, tabs that
//! cannot overwrite each other.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use uld_data::deeplesion::{LesionType, read_dl_info};
use uld_review::{ReviewState, router};

use common::{open_review, tiny_review};

struct Answer {
    status: StatusCode,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

async fn send(state: &Arc<ReviewState>, request: Request<Body>) -> Answer {
    let response = router(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Answer {
        status,
        content_type,
        body,
    }
}

async fn get(state: &Arc<ReviewState>, uri: &str) -> Answer {
    let request = Request::get(uri)
        .header("x-uld-token", state.token())
        .body(Body::empty())
        .unwrap();
    send(state, request).await
}

async fn put_decision(state: &Arc<ReviewState>, id: usize, body: impl Into<Body>) -> Answer {
    let request = Request::put(format!("/api/candidates/{id}/decision"))
        .header("x-uld-token", state.token())
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .unwrap();
    send(state, request).await
}

#[tokio::test]
async fn every_request_needs_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let (root, mined) = tiny_review(dir.path());
    let state = open_review(&root, &mined, &dir.path().join("reviewed.csv"));
    let token = state.token().to_string();
    assert_eq!(token.len(), 32);
    for uri in [
        "/",
        "/api/review",
        "/api/candidates/0",
        "/api/candidates/0/slices/1?low=0&high=1",
    ] {
        let bare = Request::get(uri).body(Body::empty()).unwrap();
        assert_eq!(
            send(&state, bare).await.status,
            StatusCode::FORBIDDEN,
            "{uri}"
        );
        let wrong = Request::get(format!(
            "{uri}{}token=00000000000000000000000000000000",
            if uri.contains('?') { "&" } else { "?" }
        ))
        .body(Body::empty())
        .unwrap();
        assert_eq!(
            send(&state, wrong).await.status,
            StatusCode::FORBIDDEN,
            "{uri}"
        );
    }
    let page = send(
        &state,
        Request::get(format!("/?token={token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.content_type.starts_with("text/html"));
    assert!(String::from_utf8_lossy(&page.body).contains("uld review"));
    // Another review's token does not open this one.
    let other = open_review(&root, &mined, &dir.path().join("other.csv"));
    assert_ne!(other.token(), token);
}

#[tokio::test]
async fn the_page_gets_candidates_slices_and_truth_by_id_only() {
    let dir = tempfile::tempdir().unwrap();
    let (root, mined) = tiny_review(dir.path());
    let state = open_review(&root, &mined, &dir.path().join("reviewed.csv"));
    let review = get(&state, "/api/review").await.json();
    let candidates = review["candidates"].as_array().unwrap();
    assert_eq!(review["total"], candidates.len());
    assert_eq!(review["decided"], 0);
    assert_eq!(review["truth_available"], true);
    let scores: Vec<f64> = candidates
        .iter()
        .map(|c| c["score"].as_f64().unwrap())
        .collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "best first: {scores:?}"
    );

    let detail = get(&state, "/api/candidates/0").await.json();
    let key = detail["key_png"].as_u64().unwrap();
    let slices: Vec<u64> = detail["slices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    assert!(
        slices.contains(&key) && slices.len() > 1,
        "neighbours to scroll to: {slices:?}"
    );
    let image = get(
        &state,
        &format!("/api/candidates/0/slices/{key}?low=-160&high=240"),
    )
    .await;
    assert_eq!(image.status, StatusCode::OK);
    assert_eq!(image.content_type, "image/png");
    let decoder = png::Decoder::new(std::io::Cursor::new(image.body));
    let info = decoder.read_info().unwrap();
    let size = detail["image_size"].as_array().unwrap();
    assert_eq!(
        (info.info().width as u64, info.info().height as u64),
        (size[0].as_u64().unwrap(), size[1].as_u64().unwrap())
    );

    // The best candidate is a real unlabelled lesion: its box is among the
    // truth boxes of its key slice.
    let truth = get(&state, &format!("/api/candidates/0/truth/{key}"))
        .await
        .json();
    assert_eq!(truth["real"], true);
    assert!(
        truth["boxes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["labelled"] == false)
    );

    // Not in the series, no such candidate, no window, no paths.
    for (uri, status) in [
        (
            "/api/candidates/0/slices/9999?low=0&high=1",
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/candidates/999/slices/1?low=0&high=1",
            StatusCode::NOT_FOUND,
        ),
        ("/api/candidates/999", StatusCode::NOT_FOUND),
        (
            &format!("/api/candidates/0/slices/{key}") as &str,
            StatusCode::BAD_REQUEST,
        ),
        (
            &format!("/api/candidates/0/slices/{key}?low=5&high=5"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/candidates/0/slices/..%2F..%2F..%2Fetc%2Fpasswd?low=0&high=1",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/candidates/..%2F..%2FDL_info.csv",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/candidates/0/slices/-1?low=0&high=1",
            StatusCode::BAD_REQUEST,
        ),
        ("/../../etc/passwd", StatusCode::NOT_FOUND),
        (
            "/api/candidates/0/slices/%00?low=0&high=1",
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let answer = get(&state, uri).await;
        assert_eq!(
            answer.status,
            status,
            "{uri}: {}",
            String::from_utf8_lossy(&answer.body)
        );
    }
}

#[tokio::test]
async fn decisions_are_saved_at_once_checked_and_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let (root, mined) = tiny_review(dir.path());
    let out = dir.path().join("reviewed.csv");
    let state = open_review(&root, &mined, &out);
    let detail = get(&state, "/api/candidates/1").await.json();
    let b: Vec<f64> = detail["box"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let moved = [b[0] + 3.0, b[1] + 2.0, b[2] + 3.0, b[3] + 2.0];

    let first = put_decision(
        &state,
        0,
        json!({"verdict": "accepted", "version": 0}).to_string(),
    )
    .await;
    assert_eq!(
        first.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    assert_eq!(first.json()["version"], 1);
    assert_eq!(
        read_dl_info(&out).unwrap().len(),
        1,
        "written as it is made"
    );
    let answer = put_decision(&state, 1, json!({
        "verdict": "accepted", "box": moved, "lesion_type": 4, "reviewer": "dr who", "version": 0,
    }).to_string()).await;
    assert_eq!(answer.status, StatusCode::OK);
    let answer = put_decision(
        &state,
        2,
        json!({"verdict": "rejected", "version": 0}).to_string(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["decided"], 3);

    // Bad requests are refused and change nothing.
    let huge = format!(
        "{{\"verdict\":\"accepted\",\"version\":0,\"reviewer\":\"{}\"}}",
        "x".repeat(8000)
    );
    for (body, content_type, status) in [
        (
            huge.as_str(),
            "application/json",
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "{\"verdict\": \"accepted\", \"version\": ",
            "application/json",
            StatusCode::BAD_REQUEST,
        ),
        (
            "{\"verdict\": \"maybe\", \"version\": 0}",
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "{\"verdict\": \"accepted\", \"version\": 0, \"path\": \"/etc\"}",
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "{\"verdict\": \"accepted\", \"version\": 0, \"box\": [-50, 0, 10, 10]}",
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "{\"verdict\": \"accepted\", \"version\": 0, \"box\": [20, 20, 10, 10]}",
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "{\"verdict\": \"accepted\", \"version\": 0, \"lesion_type\": 12}",
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "{\"verdict\": \"accepted\", \"version\": 0, \"reviewer\": \"a\\nb\"}",
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "{\"verdict\": \"accepted\", \"version\": 0}",
            "text/plain",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
    ] {
        let request = Request::put("/api/candidates/3/decision")
            .header("x-uld-token", state.token())
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body.to_string()))
            .unwrap();
        let answer = send(&state, request).await;
        assert_eq!(
            answer.status,
            status,
            "{}: {}",
            &body[..body.len().min(60)],
            String::from_utf8_lossy(&answer.body)
        );
    }
    assert_eq!(read_dl_info(&out).unwrap().len(), 3);

    // The file: DL_info rows with the moved box and type, and the review columns.
    let rows = read_dl_info(&out).unwrap();
    assert_eq!(
        rows[1].bbox.to_array().map(f64::from),
        moved.map(|v| (v as f32) as f64)
    );
    assert_eq!(rows[1].lesion_type, LesionType::Liver);
    let text = std::fs::read_to_string(&out).unwrap();
    let header = text.lines().next().unwrap();
    assert!(
        header.ends_with("Review_decision,Reviewer,Review_time,Review_candidate,Mined_score"),
        "{header}"
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[1].contains(",accepted,dr test,") && lines[2].contains(",accepted,dr who,"));
    assert!(lines[3].contains(",rejected,"));

    // Restarted, the review resumes: decisions, boxes and versions.
    let again = open_review(&root, &mined, &out);
    assert_eq!(again.decided(), 3);
    let review = get(&again, "/api/review").await.json();
    let c = &review["candidates"];
    assert_eq!(c[0]["decision"]["verdict"], "accepted");
    assert_eq!(c[1]["decision"]["lesion_type"], 4);
    assert_eq!(
        c[1]["decision"]["box"][0].as_f64().unwrap() as f32,
        moved[0] as f32
    );
    assert_eq!(c[2]["decision"]["verdict"], "rejected");
    assert_eq!(c[3]["decision"], Value::Null);
    // Undo clears a decision.
    let version = c[2]["version"].as_u64().unwrap();
    let undo = put_decision(
        &again,
        2,
        json!({"verdict": null, "version": version}).to_string(),
    )
    .await;
    assert_eq!(undo.status, StatusCode::OK);
    assert_eq!(read_dl_info(&out).unwrap().len(), 2);
}

#[tokio::test]
async fn two_tabs_cannot_overwrite_each_others_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let (root, mined) = tiny_review(dir.path());
    let out = dir.path().join("reviewed.csv");
    let state = open_review(&root, &mined, &out);
    // Both tabs loaded the review at version 0. Tab A accepts candidate 0,
    // tab B (not reloaded) rejects candidate 1: both stand.
    let a = put_decision(
        &state,
        0,
        json!({"verdict": "accepted", "version": 0}).to_string(),
    )
    .await;
    let b = put_decision(
        &state,
        1,
        json!({"verdict": "rejected", "version": 0}).to_string(),
    )
    .await;
    assert_eq!((a.status, b.status), (StatusCode::OK, StatusCode::OK));
    // Tab B now rejects candidate 0 from its stale view: refused, and it is
    // told the current decision.
    let stale = put_decision(
        &state,
        0,
        json!({"verdict": "rejected", "version": 0}).to_string(),
    )
    .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert_eq!(stale.json()["decision"]["verdict"], "accepted");
    assert_eq!(stale.json()["version"], 1);
    let rows = std::fs::read_to_string(&out).unwrap();
    assert!(rows.lines().nth(1).unwrap().contains(",accepted,"));
    assert!(rows.lines().nth(2).unwrap().contains(",rejected,"));
    assert_eq!(state.decided(), 2);
}
