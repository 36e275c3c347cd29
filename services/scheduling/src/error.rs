//! The API error: every failure of a handler, mapped once to problem+json.

use axum::response::{IntoResponse, Response};
use sea_orm::DbErr;
use slotcast_kit::Problem;

use crate::domain::Invalid;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A client error with its status and detail.
    #[error("{}", .0.detail.clone().unwrap_or_default())]
    Problem(Problem),
    /// The database is unreachable: 503, the client may retry.
    #[error("database unavailable: {0}")]
    Unavailable(DbErr),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl From<Problem> for ApiError {
    fn from(p: Problem) -> Self {
        ApiError::Problem(p)
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        ApiError::Problem(Problem::unprocessable(e.0))
    }
}

impl From<DbErr> for ApiError {
    fn from(e: DbErr) -> Self {
        match e {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => ApiError::Unavailable(e),
            other => ApiError::Unexpected(other.into()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Problem(p) => p.into_response(),
            ApiError::Unavailable(e) => {
                tracing::warn!(error = %e, "database unavailable");
                Problem::unavailable("the database is unavailable; retry later").into_response()
            }
            ApiError::Unexpected(e) => Problem::internal(&e).into_response(),
        }
    }
}
