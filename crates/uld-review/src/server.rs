//! The review's HTTP server: the page, the candidates, windowed slice
//! images and the decisions.
//!
//! Safe by default: every request must carry the review's random token
//! (`?token=` or the `X-Uld-Token` header); images are named by candidate
//! id and PNG number, never by path, and only the candidate's own series
//! folder is read; request bodies are limited to [`BODY_LIMIT`] bytes;
//! malformed requests get a 4xx answer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, put};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uld_core::{Box2, Result};
use uld_data::deeplesion::{LesionType, SeriesFolder, Verdict};
use uld_data::synth::Manifest;

use crate::candidates::Candidate;
use crate::decisions::{Decision, Review};
use crate::image::{PRESETS, windowed_png};

/// The largest request body accepted (a decision is about 200 bytes).
pub const BODY_LIMIT: usize = 4096;

const PAGE: &str = include_str!("page.html");

/// What a review shows.
pub struct ReviewData {
    /// The dataset root (`Images_png/` beneath it).
    pub root: PathBuf,
    pub candidates: Vec<Candidate>,
    /// The synthetic dataset's manifest, for the "show truth" toggle.
    pub truth: Option<Manifest>,
    /// The reviewer name decisions carry unless the page gives another.
    pub reviewer: String,
}

/// The server's state: the data, the decisions and the token.
pub struct ReviewState {
    data: ReviewData,
    review: Mutex<Review>,
    token: String,
    folders: Mutex<HashMap<PathBuf, Arc<SeriesFolder>>>,
}

impl ReviewState {
    /// The review of `data`, saved at (and resumed from) `out`, with a
    /// fresh random token.
    pub fn open(data: ReviewData, out: &Path) -> Result<Arc<Self>> {
        let review = Review::open(out, &data.candidates)?;
        let token: String = (0..32)
            .map(|_| format!("{:x}", rand::random::<u8>() & 15))
            .collect();
        Ok(Arc::new(Self {
            data,
            review: Mutex::new(review),
            token,
            folders: Mutex::new(HashMap::new()),
        }))
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn decided(&self) -> usize {
        self.lock().decided()
    }

    fn lock(&self) -> MutexGuard<'_, Review> {
        // A panic while holding the lock cannot leave a half-made decision:
        // the file is written before the state changes.
        self.review.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn candidate(&self, id: usize) -> std::result::Result<&Candidate, ApiError> {
        self.data
            .candidates
            .get(id)
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no candidate {id}")))
    }

    fn folder(&self, c: &Candidate) -> std::result::Result<Arc<SeriesFolder>, ApiError> {
        let dir = self.data.root.join("Images_png").join(c.record.series_id());
        let mut folders = self.folders.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = folders.get(&dir) {
            return Ok(f.clone());
        }
        let folder = Arc::new(SeriesFolder::open(&dir).map_err(ApiError::data)?);
        folders.insert(dir, folder.clone());
        Ok(folder)
    }
}

/// An error answer: a status and a message, as JSON.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// The data could not be read: the server's problem, not the request's.
    fn data(e: uld_core::Error) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(json!({ "error": self.message }))).into_response()
    }
}

type ApiResult<T> = std::result::Result<T, ApiError>;

/// The routes, behind the token check and the body limit.
pub fn router(state: Arc<ReviewState>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/review", get(review_summary))
        .route("/api/candidates/{id}", get(candidate_detail))
        .route("/api/candidates/{id}/slices/{png}", get(slice_image))
        .route("/api/candidates/{id}/truth/{png}", get(truth_boxes))
        .route("/api/candidates/{id}/decision", put(decide))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .with_state(state)
}

async fn require_token(
    State(state): State<Arc<ReviewState>>,
    request: Request,
    next: Next,
) -> Response {
    let header_token = request
        .headers()
        .get("x-uld-token")
        .and_then(|v| v.to_str().ok());
    let query_token = request
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("token=")));
    let given = header_token.or(query_token).unwrap_or("");
    if !same_secret(given.as_bytes(), state.token.as_bytes()) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "missing or wrong review token: open the address `uld review` printed",
        )
        .into_response();
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Compares without stopping at the first difference.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

#[derive(Serialize)]
struct DecisionJson {
    verdict: Verdict,
    #[serde(rename = "box")]
    bbox: [f32; 4],
    lesion_type: i32,
    reviewer: String,
    time: String,
}

fn decision_json(d: Option<&Decision>) -> Option<DecisionJson> {
    d.map(|d| DecisionJson {
        verdict: d.verdict,
        bbox: d.bbox.to_array(),
        lesion_type: d.lesion_type.code(),
        reviewer: d.reviewer.clone(),
        time: d.time.clone(),
    })
}

async fn review_summary(State(state): State<Arc<ReviewState>>) -> axum::Json<Value> {
    let review = state.lock();
    let candidates: Vec<Value> = state
        .data
        .candidates
        .iter()
        .map(|c| candidate_json(c, &review))
        .collect();
    let types: Vec<Value> = LesionType::ALL
        .iter()
        .map(|t| json!({ "code": t.code(), "name": t.name() }))
        .collect();
    let presets: Vec<Value> = PRESETS
        .iter()
        .map(|(name, low, high)| json!({ "name": name, "low": low, "high": high }))
        .collect();
    axum::Json(json!({
        "reviewer": state.data.reviewer,
        "total": state.data.candidates.len(),
        "decided": review.decided(),
        "truth_available": state.data.truth.is_some(),
        "lesion_types": types,
        "presets": presets,
        "candidates": candidates,
    }))
}

async fn candidate_detail(
    State(state): State<Arc<ReviewState>>,
    UrlPath(id): UrlPath<usize>,
) -> ApiResult<axum::Json<Value>> {
    let c = state.candidate(id)?;
    let folder = state.folder(c)?;
    let review = state.lock();
    let mut detail = candidate_json(c, &review);
    detail["key_png"] = json!(c.record.key_slice_png);
    detail["slices"] = json!(folder.numbers().collect::<Vec<u32>>());
    detail["image_size"] = json!(c.record.image_size);
    detail["spacing"] = json!(c.record.spacing);
    detail["dicom_windows"] = json!(c.record.dicom_windows);
    Ok(axum::Json(detail))
}

/// What the list shows of a candidate, with its decision and version.
fn candidate_json(c: &Candidate, review: &Review) -> Value {
    json!({
        "id": c.id,
        "file_name": c.record.file_name,
        "score": c.score,
        "box": c.record.bbox.to_array(),
        "lesion_type": c.record.lesion_type.code(),
        "decision": decision_json(review.decision(c.id)),
        "version": review.version(c.id),
    })
}

#[derive(Deserialize)]
struct WindowQuery {
    low: f32,
    high: f32,
}

async fn slice_image(
    State(state): State<Arc<ReviewState>>,
    UrlPath((id, png)): UrlPath<(usize, u32)>,
    Query(window): Query<WindowQuery>,
) -> ApiResult<Response> {
    let c = state.candidate(id)?;
    let folder = state.folder(c)?;
    if !folder.contains(png) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("candidate {id}'s series has no slice {png:03}.png"),
        ));
    }
    let slice = folder.read(png).map_err(ApiError::data)?;
    let bytes = windowed_png(&slice, window.low, window.high)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "image/png")], bytes).into_response())
}

async fn truth_boxes(
    State(state): State<Arc<ReviewState>>,
    UrlPath((id, png)): UrlPath<(usize, u32)>,
) -> ApiResult<axum::Json<Value>> {
    let c = state.candidate(id)?;
    let manifest = state.data.truth.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "this dataset has no synth_manifest.json: truth is known on synthetic data only",
        )
    })?;
    let series = c.record.series_id();
    let boxes: Vec<Value> = manifest
        .lesions
        .iter()
        .filter(|l| l.series_id == series)
        .filter_map(|l| {
            l.box_on(png)
                .map(|b| json!({ "box": b.to_array(), "labelled": l.labelled }))
        })
        .collect();
    Ok(axum::Json(json!({ "boxes": boxes, "real": c.real })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionRequest {
    /// `accepted`, `rejected`, or null to clear the decision.
    verdict: Option<Verdict>,
    #[serde(rename = "box")]
    bbox: Option<[f32; 4]>,
    lesion_type: Option<i32>,
    reviewer: Option<String>,
    /// The version the page last saw.
    version: u64,
}

fn checked_box(c: &Candidate, b: [f32; 4]) -> ApiResult<Box2> {
    let bbox = Box2::from(b);
    let [w, h] = c.record.image_size;
    let inside = b.iter().all(|v| v.is_finite())
        && bbox.x1 >= 0.0
        && bbox.y1 >= 0.0
        && bbox.x2 <= w as f32
        && bbox.y2 <= h as f32;
    if !inside || bbox.width() < 1.0 || bbox.height() < 1.0 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("box {b:?} is not a box of at least 1 px inside the {w} x {h} image"),
        ));
    }
    Ok(bbox)
}

fn checked_reviewer(name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the reviewer name must be 1-100 printable characters",
        ));
    }
    Ok(name.to_string())
}

async fn decide(
    State(state): State<Arc<ReviewState>>,
    UrlPath(id): UrlPath<usize>,
    axum::Json(request): axum::Json<DecisionRequest>,
) -> ApiResult<Response> {
    let c = state.candidate(id)?;
    let decision = match request.verdict {
        None => None,
        Some(verdict) => {
            let bbox = checked_box(c, request.bbox.unwrap_or(c.record.bbox.to_array()))?;
            let code = request.lesion_type.unwrap_or(c.record.lesion_type.code());
            let lesion_type = LesionType::from_code(code).ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("lesion type {code} is not -1 or 1-8"),
                )
            })?;
            let reviewer =
                checked_reviewer(request.reviewer.as_deref().unwrap_or(&state.data.reviewer))?;
            Some(Decision::now(verdict, bbox, lesion_type, &reviewer))
        }
    };
    // Decisions are rare and small: the file is written under the lock, so
    // two tabs' decisions reach it one after the other.
    let mut review = state.lock();
    match review
        .decide(&state.data.candidates, id, request.version, decision)
        .map_err(ApiError::data)?
    {
        Ok(version) => Ok(axum::Json(json!({
            "version": version,
            "decision": decision_json(review.decision(id)),
            "decided": review.decided(),
        }))
        .into_response()),
        Err(conflict) => Ok((
            StatusCode::CONFLICT,
            axum::Json(json!({
                "error": "another tab changed this candidate; its current decision is shown",
                "version": conflict.current_version,
                "decision": decision_json(review.decision(id)),
            })),
        )
            .into_response()),
    }
}
