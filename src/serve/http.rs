//! The HTTP side of `serve`: `/health` (200 while the scheduler loop is
//! alive), `/metrics` (Prometheus text), `/status` (the `status --json`
//! document; 503 when a job is CRITICAL) and `/` (the status page). With
//! `[serve] token`, everything but `/health` needs `Authorization: Bearer`.

use super::{page, Daemon};
use crate::ops::status::{status, State};
use axum::extract::State as Shared;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub async fn serve(listener: tokio::net::TcpListener, d: Arc<Daemon>, cancel: CancellationToken) {
    let app = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/status", get(status_json))
        .route("/", get(index))
        .with_state(d);
    let r = axum::serve(listener, app)
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await;
    if let Err(e) = r {
        tracing::error!(error = %e, "the HTTP server stopped");
    }
}

/// Checks the bearer token (constant-time comparison), when one is set.
fn authorized(d: &Daemon, headers: &HeaderMap) -> bool {
    let Some(token) = d.current().token.clone() else {
        return true;
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then_some(token.trim())
        })
        .unwrap_or("");
    let (a, b) = (given.as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "a bearer token is required\n",
    )
        .into_response()
}

async fn health(Shared(d): Shared<Arc<Daemon>>) -> Response {
    if d.alive() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "scheduler loop stalled\n").into_response()
    }
}

async fn report(d: &Daemon) -> crate::ops::status::StatusReport {
    status(&d.current().jobs, time::OffsetDateTime::now_utc()).await
}

async fn metrics(Shared(d): Shared<Arc<Daemon>>, headers: HeaderMap) -> Response {
    if !authorized(&d, &headers) {
        return unauthorized();
    }
    let r = report(&d).await;
    let n = d.notifier();
    match d.metrics.text(&r, n.delivered(), n.failures()) {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

async fn status_json(Shared(d): Shared<Arc<Daemon>>, headers: HeaderMap) -> Response {
    if !authorized(&d, &headers) {
        return unauthorized();
    }
    let r = report(&d).await;
    let code = if r.state == State::Critical {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    match serde_json::to_string_pretty(&r) {
        Ok(body) => (code, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

async fn index(Shared(d): Shared<Arc<Daemon>>, headers: HeaderMap) -> Response {
    if !authorized(&d, &headers) {
        return unauthorized();
    }
    let r = report(&d).await;
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page::render(&r),
    )
        .into_response()
}
