//! Authentication on the HTTP layer: the guard every routed request passes, the route
//! policy table it consults, and the extractors handlers use to learn who is calling.

mod guard;
pub mod policy;

pub(crate) use guard::{ClientIp, guard};
