//! `{items: [...]}`: the answer of every list route that has no pagination.

/// The rows of a list, in the order the route documents.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Items<T> {
    pub(crate) items: Vec<T>,
}
