//! Reading a container's Wasm from containerd's content store, for images in the Wasm OCI
//! artifact format: their module is a layer, not a file in the rootfs. Container → image →
//! (index →) manifest → Wasm layer, each blob checked against its digest.

use std::path::PathBuf;

use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::{GetContainerRequest, GetImageRequest, ReadContentRequest};
use containerd_client::tonic::transport::Channel;
use containerd_client::tonic::{Request, Status};

use crate::image::{Descriptor, is_index, pick_manifest, verify, wasm_layer};

const NAMESPACE_HEADER: &str = "containerd-namespace";

/// containerd's gRPC API for one namespace.
pub struct ContentStore {
    address: PathBuf,
    namespace: String,
}

impl ContentStore {
    pub fn new(address: impl Into<PathBuf>, namespace: impl Into<String>) -> Self {
        Self { address: address.into(), namespace: namespace.into() }
    }

    /// The Wasm layer of the image container `container_id` was created from.
    pub async fn wasm_of(&self, container_id: &str) -> Result<Vec<u8>, String> {
        let channel = containerd_client::connect(&self.address)
            .await
            .map_err(|e| format!("cannot reach containerd at {}: {e}", self.address.display()))?;
        let image = self.image_of(channel.clone(), container_id).await?;
        let mut content = ContentClient::new(channel.clone());
        let mut target = self.target_of(channel, &image).await?;
        if is_index(&target.media_type) {
            target = pick_manifest(&self.read(&mut content, &target).await?)?;
        }
        let layer = wasm_layer(&self.read(&mut content, &target).await?).map_err(|e| format!("image {image}: {e}"))?;
        self.read(&mut content, &layer).await
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Ok(value) = self.namespace.parse() {
            request.metadata_mut().insert(NAMESPACE_HEADER, value);
        }
        request
    }

    async fn image_of(&self, channel: Channel, container_id: &str) -> Result<String, String> {
        let response = ContainersClient::new(channel)
            .get(self.request(GetContainerRequest { id: container_id.to_string() }))
            .await
            .map_err(|e| rpc_error(format!("container {container_id}"), e))?;
        let image = response.into_inner().container.map(|c| c.image).unwrap_or_default();
        if image.is_empty() {
            return Err(format!("container {container_id} was created without an image"));
        }
        Ok(image)
    }

    async fn target_of(&self, channel: Channel, image: &str) -> Result<Descriptor, String> {
        let response = ImagesClient::new(channel)
            .get(self.request(GetImageRequest { name: image.to_string() }))
            .await
            .map_err(|e| rpc_error(format!("image {image}"), e))?;
        let target = response
            .into_inner()
            .image
            .and_then(|i| i.target)
            .ok_or_else(|| format!("image {image} has no target descriptor"))?;
        Ok(Descriptor { media_type: target.media_type, digest: target.digest, size: target.size, platform: None })
    }

    async fn read(&self, content: &mut ContentClient<Channel>, blob: &Descriptor) -> Result<Vec<u8>, String> {
        let request = ReadContentRequest { digest: blob.digest.clone(), offset: 0, size: 0 };
        let mut stream = content
            .read(self.request(request))
            .await
            .map_err(|e| rpc_error(format!("blob {}", blob.digest), e))?
            .into_inner();
        let mut data = Vec::with_capacity(usize::try_from(blob.size).unwrap_or(0));
        while let Some(chunk) = stream.message().await.map_err(|e| rpc_error(format!("blob {}", blob.digest), e))? {
            data.extend_from_slice(&chunk.data);
        }
        verify(blob, &data)?;
        Ok(data)
    }
}

fn rpc_error(what: String, status: Status) -> String {
    format!("cannot read {what} from containerd: {}", status.message())
}
