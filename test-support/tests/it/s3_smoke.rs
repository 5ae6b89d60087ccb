use aula_test_support::fresh_s3;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

#[tokio::test]
async fn s3_round_trips_objects_with_conditional_put() {
    let s3 = fresh_s3("smoke");
    let key = Path::from(format!("{}/a/data.bin", s3.prefix));
    let body: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    s3.store
        .put(&key, PutPayload::from(body.clone()))
        .await
        .unwrap_or_else(|e| panic!("S3 object store at {}: put failed: {e}", s3.url));
    let got = s3
        .store
        .get(&key)
        .await
        .expect("S3: get failed")
        .bytes()
        .await
        .expect("S3: read failed");
    assert_eq!(got, Bytes::from(body.clone()));
    let range = s3
        .store
        .get_range(&key, 4..12)
        .await
        .expect("S3: range get failed");
    assert_eq!(&range[..], &body[4..12]);

    // Delta commits rely on create-if-absent: the second create must fail.
    let commit = Path::from(format!(
        "{}/_delta_log/00000000000000000000.json",
        s3.prefix
    ));
    let create = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    s3.store
        .put_opts(&commit, PutPayload::from_static(b"{}"), create.clone())
        .await
        .expect("S3: first conditional create failed");
    let second = s3
        .store
        .put_opts(&commit, PutPayload::from_static(b"{}"), create)
        .await;
    assert!(
        matches!(second, Err(object_store::Error::AlreadyExists { .. })),
        "S3: a second PutMode::Create of the same key must fail with AlreadyExists, got {second:?}"
    );

    let listed: Vec<_> = s3
        .store
        .list(Some(&Path::from(s3.prefix.clone())))
        .try_collect()
        .await
        .expect("S3: list failed");
    assert_eq!(listed.len(), 2);
}
