//! Routes grouped by resource; each module exposes its own `routes()`.
//!
//! Routes are registered through [`Routes`], which records every `(method, path)` it adds,
//! so the route policy table (`crate::auth::policy`) can be checked against exactly what
//! is served: a route missing from the table is a failing test, and at run time a denial.

pub mod admin;
pub mod analysis;
pub mod auth;
pub mod autonomous;
pub mod dashboard;
pub mod docs;
pub mod events;
pub mod executions;
pub mod incidents;
pub mod ingest;
pub mod insights;
mod items;
pub mod metrics;
pub mod ops;
mod params;
pub mod queries;
pub mod responses;
pub mod rules;
pub mod silences;
pub mod stream;
pub mod topics;
pub mod topology;

use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, on};

use crate::AppState;

/// A router that remembers what it registered.
#[derive(Debug, Default)]
pub struct Routes {
    router: Router<AppState>,
    registered: Vec<(Method, &'static str)>,
}

impl Routes {
    /// Adds `handler` for `method` on `path`.
    fn add<H, T>(mut self, method: Method, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = match MethodFilter::try_from(method.clone()) {
            Ok(filter) => filter,
            Err(e) => unreachable!("routes use standard methods only: {e}"),
        };
        self.router = self.router.route(path, on(filter, handler));
        self.registered.push((method, path));
        self
    }

    pub(crate) fn get<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.add(Method::GET, path, h)
    }

    pub(crate) fn post<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        h: H,
    ) -> Self {
        self.add(Method::POST, path, h)
    }

    pub(crate) fn put<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.add(Method::PUT, path, h)
    }

    pub(crate) fn patch<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        h: H,
    ) -> Self {
        self.add(Method::PATCH, path, h)
    }

    pub(crate) fn delete<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        h: H,
    ) -> Self {
        self.add(Method::DELETE, path, h)
    }

    /// Both sets of routes.
    #[must_use]
    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.registered.extend(other.registered);
        self
    }

    /// Every `(method, path)` registered.
    pub fn registered(&self) -> &[(Method, &'static str)] {
        &self.registered
    }

    pub(crate) fn into_router(self) -> Router<AppState> {
        self.router
    }
}
