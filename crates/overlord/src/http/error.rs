//! Every error the overlord's HTTP API returns, mapped to a status code and a Druid-shaped body
//! in one place.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::queue::QueueError;

#[derive(Debug)]
pub enum ApiError {
    /// 400 `{"error": "..."}`.
    BadRequest(String),
    /// 400 with a plain-text body, where Druid answers in text.
    BadRequestText(String),
    /// 404 with the given JSON body (Druid's shapes differ per route).
    NotFound(Value),
    /// 404 with a plain-text body.
    NotFoundText(String),
    PayloadTooLarge(String),
    /// 408: the client did not send its request in time.
    RequestTimeout(String),
    TooManyRequests(String),
    Unavailable(String),
    /// 403: authenticated, but the user's roles do not allow it (Druid's `Access-Check-Result`).
    Forbidden(String),
    Internal(String),
}

impl ApiError {
    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let text = |status: StatusCode, msg: String| {
            (
                status,
                [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
                msg,
            )
                .into_response()
        };
        let json_error = |status: StatusCode, msg: String| {
            (status, Json(json!({ "error": msg }))).into_response()
        };
        match self {
            ApiError::BadRequest(m) => json_error(StatusCode::BAD_REQUEST, m),
            ApiError::BadRequestText(m) => text(StatusCode::BAD_REQUEST, m),
            ApiError::NotFound(body) => (StatusCode::NOT_FOUND, Json(body)).into_response(),
            ApiError::NotFoundText(m) => text(StatusCode::NOT_FOUND, m),
            ApiError::PayloadTooLarge(m) => json_error(StatusCode::PAYLOAD_TOO_LARGE, m),
            ApiError::RequestTimeout(m) => json_error(StatusCode::REQUEST_TIMEOUT, m),
            ApiError::TooManyRequests(m) => json_error(StatusCode::TOO_MANY_REQUESTS, m),
            ApiError::Unavailable(m) => json_error(StatusCode::SERVICE_UNAVAILABLE, m),
            ApiError::Forbidden(m) => (
                StatusCode::FORBIDDEN,
                Json(json!({ "Access-Check-Result": "Unauthorized", "error": m })),
            )
                .into_response(),
            ApiError::Internal(m) => {
                tracing::error!(error = %m, "request failed");
                json_error(StatusCode::INTERNAL_SERVER_ERROR, m)
            }
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Exists(_) | QueueError::NotActive(_) | QueueError::Action(_) => {
                ApiError::BadRequest(e.to_string())
            }
            QueueError::Full { .. } => ApiError::TooManyRequests(e.to_string()),
            QueueError::Stopped | QueueError::Fenced(_) => ApiError::Unavailable(e.to_string()),
            QueueError::StorageTimeout(_) => ApiError::Unavailable(e.to_string()),
            QueueError::Storage(e) => e.into(),
        }
    }
}

impl From<drover_metadata::MetadataError> for ApiError {
    fn from(e: drover_metadata::MetadataError) -> Self {
        // A fenced write: this overlord no longer leads (it is stepping down already).
        let fenced = matches!(e, drover_metadata::MetadataError::Fenced { .. });
        if fenced || e.is_unavailable() {
            ApiError::Unavailable(e.to_string())
        } else {
            ApiError::Internal(e.to_string())
        }
    }
}
