//! The operator's dashboard (`worker --http ADDR`): one server-rendered
//! page (the ring drawn, units in progress, throughput, the result table)
//! and Prometheus `/metrics`.
//!
//! It only reads: each request takes a [`view::Snapshot`] from the ring
//! task (the same read `worker status` makes, plus one page of results)
//! and renders it; a sampler task keeps the throughput history. It listens
//! on loopback unless `--http-public` says otherwise, since neither the
//! page nor `/metrics` has any authentication.
//!
//! - [`view`]: the plain structs a request renders, and reading them;
//! - [`samples`]: the ring buffer of counter readings behind the chart;
//! - [`page`], [`svg`]: the HTML and its inline SVG;
//! - [`metrics`]: the text exposition format.

pub mod metrics;
pub mod page;
pub mod samples;
pub mod svg;
pub mod view;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use clap::Args;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::info;

use crate::BadInput;
use crate::node::Shell;
use samples::Samples;

/// The `--http` options of a peer.
#[derive(Debug, Clone, Default, Args)]
pub struct HttpArgs {
    /// Serve the dashboard and Prometheus /metrics on this address (IP:PORT;
    /// port 0 picks a free one, printed on stdout as `dashboard on URL`).
    /// Off by default; a loopback address unless --http-public is given.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// Allow --http on an address other machines can reach. The page and
    /// /metrics have no authentication: put them behind a proxy that has.
    #[arg(long, requires = "http")]
    pub http_public: bool,
}

impl HttpArgs {
    /// The dashboard these options ask for, if any.
    pub fn config(&self) -> Option<HttpConfig> {
        self.http.map(|addr| HttpConfig {
            addr,
            public: self.http_public,
        })
    }
}

/// Where and how the dashboard listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpConfig {
    /// Address to bind.
    pub addr: SocketAddr,
    /// Whether a non-loopback address is allowed.
    pub public: bool,
}

impl HttpConfig {
    /// Refuses a non-loopback address unless the operator said it is meant.
    pub fn check(&self) -> Result<(), BadInput> {
        if self.public || self.addr.ip().is_loopback() {
            Ok(())
        } else {
            Err(BadInput::Address {
                flag: "--http",
                addr: self.addr.to_string(),
                reason: "not a loopback address, and the dashboard has no authentication; \
                         add --http-public to serve it to other machines"
                    .into(),
            })
        }
    }
}

/// Why the dashboard could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The address was refused (see [`HttpConfig::check`]).
    // Not `transparent`: the exit status finds `BadInput` in the chain of
    // sources, which `transparent` would skip.
    #[error("{0}")]
    Refused(#[from] BadInput),
    /// Binding the address failed.
    #[error("cannot listen on {addr} for --http: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// Escapes text for HTML and SVG (element content and quoted attributes).
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Checks the address and binds it; done before the node starts, so that a
/// refused or busy address stops the peer before it joins anything.
pub async fn bind(cfg: &HttpConfig) -> Result<TcpListener, HttpError> {
    cfg.check()?;
    TcpListener::bind(cfg.addr)
        .await
        .map_err(|source| HttpError::Bind {
            addr: cfg.addr,
            source,
        })
}

struct Dashboard {
    shell: Arc<Shell>,
    samples: Arc<Samples>,
}

/// `?page=N` of the result table (from 0).
#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    #[serde(default)]
    page: usize,
}

async fn index(State(d): State<Arc<Dashboard>>, Query(q): Query<PageQuery>) -> Html<String> {
    let s = view::snapshot(&d.shell, d.samples.all(), q.page).await;
    Html(page::render(&s))
}

async fn metrics_text(State(d): State<Arc<Dashboard>>) -> impl IntoResponse {
    let s = view::snapshot(&d.shell, d.samples.all(), 0).await;
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        metrics::render(&s),
    )
}

/// Serves the dashboard on `listener` and starts the sampler; returns the
/// bound address and both tasks (aborted when the node stops).
pub(crate) fn spawn(
    listener: TcpListener,
    shell: Arc<Shell>,
) -> std::io::Result<(SocketAddr, Vec<JoinHandle<()>>)> {
    let addr = listener.local_addr()?;
    let samples = Arc::new(Samples::default());
    let sampler = tokio::spawn(samples::run(shell.clone(), samples.clone()));
    let app = Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics_text))
        .with_state(Arc::new(Dashboard { shell, samples }));
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "dashboard server stopped");
        }
    });
    info!(%addr, "dashboard serving");
    Ok((addr, vec![sampler, server]))
}
