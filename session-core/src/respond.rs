//! `?` on a session accessor's error in a handler: [`Error`] answers an opaque 500 on
//! axum and actix-web alike, its cause logged and never sent, as the adapters answer a
//! failed store. Behind the `axum` and `actix` features, which the adapters turn on.

use crate::state::Error;

const BODY: &str = "Internal Server Error";

/// Logs what failed. A conversion's serde message can quote the value (`invalid type:
/// string "..."`), and session values are often secrets: only its category and position
/// are logged.
fn log(e: &Error) {
    match e {
        Error::Value { source, .. } => tracing::error!(
            error = %e,
            serde = ?source.classify(),
            line = source.line(),
            column = source.column(),
            "a session accessor failed in a handler; answering 500"
        ),
        _ => tracing::error!(error = %e, "a session accessor failed in a handler; answering 500"),
    }
}

#[cfg(feature = "axum")]
impl axum_core::response::IntoResponse for Error {
    fn into_response(self) -> axum_core::response::Response {
        log(&self);
        let mut response = axum_core::response::Response::new(BODY.into());
        *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}

#[cfg(feature = "actix")]
impl actix_web::ResponseError for Error {
    fn status_code(&self) -> actix_web::http::StatusCode {
        actix_web::http::StatusCode::INTERNAL_SERVER_ERROR
    }

    fn error_response(&self) -> actix_web::HttpResponse {
        log(self);
        actix_web::HttpResponse::InternalServerError()
            .content_type("text/plain; charset=utf-8")
            .body(BODY)
    }
}
