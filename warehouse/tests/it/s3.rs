//! S3 specifics: the store is built from the environment, and commits are
//! conditional puts, so concurrent writers never overwrite each other.

use std::sync::Arc;

use aula_test_support::{fresh_s3, services};
use aula_warehouse::{Lake, LakeLocation, S3Settings, WriteMode, WriteOptions};
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::common::{input, name};

#[tokio::test]
async fn the_s3_store_refuses_to_overwrite_an_existing_commit_file() {
    let s3 = fresh_s3("cond_put");
    let settings = S3Settings::from_lookup(|n| services().var(n));
    let store = settings.build_store(&s3.bucket).expect("store");
    let path = object_store::path::Path::from(format!(
        "{}/_delta_log/00000000000000000000.json",
        s3.prefix
    ));
    let create = || PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    store
        .put_opts(&path, PutPayload::from_static(b"first"), create())
        .await
        .expect("first put");
    let second = store
        .put_opts(&path, PutPayload::from_static(b"second"), create())
        .await;
    assert!(
        matches!(second, Err(object_store::Error::AlreadyExists { .. })),
        "a second create must fail with AlreadyExists, got {second:?}"
    );
    let body = store
        .get(&path)
        .await
        .expect("get")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(&body[..], b"first");
}

#[tokio::test]
async fn concurrent_writers_on_s3_both_commit_and_nothing_is_lost() {
    let s3 = fresh_s3("concurrent");
    let settings = S3Settings::from_lookup(|n| services().var(n));
    let lake = Arc::new(Lake::new(
        LakeLocation::parse(&s3.url, &settings).expect("s3 lake from env"),
    ));
    let t = name("raw.concurrent");
    lake.write(
        &t,
        input(&[("seed", 0, 1, None)]),
        WriteOptions::new(WriteMode::Append),
    )
    .await
    .expect("seed");
    let mut tasks = Vec::new();
    for i in 0..4 {
        let lake = lake.clone();
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("w{i}");
            lake.write(
                &t,
                input(&[(id.as_str(), i, 1, Some(i))]),
                WriteOptions::new(WriteMode::Append),
            )
            .await
        }));
    }
    let mut versions = Vec::new();
    for task in tasks {
        versions.push(
            task.await
                .expect("join")
                .expect("write")
                .version
                .expect("version"),
        );
    }
    versions.sort_unstable();
    versions.dedup();
    assert_eq!(
        versions.len(),
        4,
        "every writer got its own version: {versions:?}"
    );
    assert_eq!(lake.row_count(&t).await.expect("count"), 5);
}
