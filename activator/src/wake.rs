//! Waking an app: scaling it from zero to one replica. Behind a trait so the proxy can be
//! tested with a fake; [`crate::cluster::KubeWaker`] patches the WasmApp's scale subresource.

use std::future::Future;
use std::pin::Pin;

use crate::error::Result;
use crate::index::AppKey;

/// What a wake did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Woke {
    /// The app was scaled from 0 to 1.
    Scaled,
    /// Its scale was no longer 0 (someone else scaled it first): nothing to do.
    AlreadyScaled,
}

pub type WakeFuture<'a> = Pin<Box<dyn Future<Output = Result<Woke>> + Send + 'a>>;

/// Scales an app that is at zero to one replica.
pub trait AppWaker: Send + Sync {
    /// Scales `app` to one replica if its scale is still zero.
    fn wake<'a>(&'a self, app: &'a AppKey) -> WakeFuture<'a>;
}
