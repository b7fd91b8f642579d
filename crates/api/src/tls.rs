//! HTTPS: serving the API with rustls from PEM certificate and key files, and optionally
//! redirecting plain HTTP on another address to it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, Uri, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

/// `[api.tls]`: HTTPS is on when both files are set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert_file: Option<PathBuf>,
    /// PEM private key.
    pub key_file: Option<PathBuf>,
    /// Also listen here with plain HTTP and answer every request with a redirect to HTTPS.
    pub redirect_http_from: Option<SocketAddr>,
}

impl TlsConfig {
    /// Whether HTTPS is configured.
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some() && self.key_file.is_some()
    }

    /// Refuses half a configuration.
    pub(crate) fn validate(&self) -> Result<(), String> {
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) | (None, Some(_)) => {
                Err("api.tls needs both cert_file and key_file".into())
            }
            (None, None) if self.redirect_http_from.is_some() => {
                Err("api.tls.redirect_http_from needs cert_file and key_file".into())
            }
            _ => Ok(()),
        }
    }
}

/// Loads the certificate and key (installing the ring crypto provider once per process).
pub(crate) async fn load(
    config: &TlsConfig,
) -> Result<axum_server::tls_rustls::RustlsConfig, String> {
    let (Some(cert), Some(key)) = (&config.cert_file, &config.key_file) else {
        return Err("TLS is not configured".into());
    };
    // Fails only when a provider is already installed, which is what we want anyway.
    let _ = rustls::crypto::ring::default_provider().install_default();
    axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
        .await
        .map_err(|e| {
            format!(
                "api.tls: cannot load {} / {}: {e}",
                cert.display(),
                key.display()
            )
        })
}

/// Serves `router` over HTTPS on `listener` until `shutdown`, then drains for up to 10 s.
pub(crate) async fn serve(
    listener: std::net::TcpListener,
    tls: axum_server::tls_rustls::RustlsConfig,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(Duration::from_secs(10)));
    });
    axum_server::from_tcp_rustls(listener, tls)?
        .handle(handle)
        .serve(router.into_make_service_with_connect_info::<SocketAddr>())
        .await
}

/// A plain-HTTP app that redirects every request to the same path on `https_port`.
pub(crate) fn redirect_app(https_port: u16) -> Router {
    Router::new().fallback(move |headers: axum::http::HeaderMap, uri: Uri| async move {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.rsplit_once(':').map_or(Some(h), |(host, _)| Some(host)))
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()));
        let Some(host) = host else {
            return (StatusCode::BAD_REQUEST, "missing Host header").into_response();
        };
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let location = format!("https://{host}:{https_port}{path}");
        (
            StatusCode::PERMANENT_REDIRECT,
            [(header::LOCATION, location)],
        )
            .into_response()
    })
}
