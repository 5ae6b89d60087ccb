//! Lake tests against a local folder and the S3 server (moto).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod modes;
mod s3;
