//! The tunnel's AWS adapters beyond the pending table: the bodies bucket (S3, encrypted by the
//! bucket's default, the platform key). The rollout parameter is read through
//! `eventfabric_core::parameter::SsmParameter`.

use aws_sdk_s3::primitives::ByteStream;

use crate::agent::BodyStore;

/// Response bodies over the item's limit, in the bodies bucket.
pub struct S3Bodies {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Bodies {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }
}

impl BodyStore for S3Bodies {
    async fn put(&self, key: &str, body: &[u8]) -> Result<(), String> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body.to_vec()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                format!(
                    "s3://{}/{key}: {}",
                    self.bucket,
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                )
            })
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, String> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "s3://{}/{key}: {}",
                    self.bucket,
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                )
            })?;
        out.body
            .collect()
            .await
            .map(|b| b.into_bytes().to_vec())
            .map_err(|e| format!("s3://{}/{key}: body not read: {e}", self.bucket))
    }
}
