//! Server-side apply and owner-checked delete: the two writes every controller does.

use std::fmt::Debug;

use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Result, kube_err};
use crate::resources::FIELD_MANAGER;

/// Applies `obj` as the operator's field manager, taking over fields others changed (the
/// operator's view of its own objects wins).
pub async fn apply<K>(api: &Api<K>, obj: &K) -> Result<K>
where
    K: Resource<DynamicType = ()> + Clone + Serialize + DeserializeOwned + Debug,
{
    let name = obj.name_any();
    api.patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(obj))
        .await
        .map_err(kube_err(format!("apply {} {name}", K::kind(&()))))
}

/// Deletes `name` if it exists and `owner_uid` controls it; leaves objects of others alone.
pub async fn delete_owned<K>(api: &Api<K>, name: &str, owner_uid: &str) -> Result<()>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let kind = K::kind(&());
    let Some(existing) = api.get_opt(name).await.map_err(kube_err(format!("get {kind} {name}")))? else {
        return Ok(());
    };
    let ours = existing.owner_references().iter().any(|o| o.controller == Some(true) && o.uid == owner_uid);
    if ours {
        api.delete(name, &DeleteParams::background()).await.map_err(kube_err(format!("delete {kind} {name}")))?;
    }
    Ok(())
}
