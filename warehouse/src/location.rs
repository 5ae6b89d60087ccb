//! Where the lake lives: a local folder or an S3 prefix, and how a table name
//! maps to a path under it.

use std::sync::{Arc, Once};

use deltalake::logstore::{
    LogStore, LogStoreFactory, StorageConfig, default_logstore, logstore_factories,
};
use deltalake::{DeltaResult, ObjectStore};
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use url::Url;

use crate::error::{LakeError, Result};

/// A lake table name, `schema.table`: both parts lower-case identifiers, so
/// that the name is also a safe path segment and a SQL identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableName {
    schema: String,
    table: String,
}

impl TableName {
    /// Parse `raw.crm_leads`.
    pub fn parse(name: &str) -> Result<Self> {
        let bad = |reason: &str| LakeError::BadTableName {
            name: name.to_owned(),
            reason: reason.to_owned(),
        };
        let (schema, table) = name
            .split_once('.')
            .ok_or_else(|| bad("expected `schema.table`, e.g. `raw.crm_leads`"))?;
        for part in [schema, table] {
            if part.is_empty() {
                return Err(bad("empty part"));
            }
            if !part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                return Err(bad("parts may hold only a-z, 0-9 and `_`"));
            }
            if part.starts_with(|c: char| c.is_ascii_digit()) {
                return Err(bad("parts must not start with a digit"));
            }
        }
        Ok(TableName {
            schema: schema.to_owned(),
            table: table.to_owned(),
        })
    }

    /// The schema part (`raw`).
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The table part (`crm_leads`).
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The path of the table under the lake root (`raw/crm_leads`).
    pub fn relative_path(&self) -> String {
        format!("{}/{}", self.schema, self.table)
    }
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.table)
    }
}

impl std::str::FromStr for TableName {
    type Err = LakeError;
    fn from_str(s: &str) -> Result<Self> {
        TableName::parse(s)
    }
}

/// S3 connection settings. Credentials come from the environment (never from
/// pipeline YAML) and are never printed: `Debug` redacts them.
#[derive(Clone, Default)]
pub struct S3Settings {
    /// Endpoint of a non-AWS server (`http://127.0.0.1:5000`); `None` for AWS.
    pub endpoint: Option<String>,
    /// Region (`us-east-1` when unset).
    pub region: Option<String>,
    /// Access key id.
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<String>,
    /// Session token of temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id.as_ref().map(|_| "***"))
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "***"),
            )
            .field("session_token", &self.session_token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl S3Settings {
    /// Read `AWS_ENDPOINT_URL`, `AWS_REGION` (or `AWS_DEFAULT_REGION`),
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Read the same variables through `lookup` (an env file, a test fixture).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |n: &str| lookup(n).filter(|v| !v.is_empty());
        S3Settings {
            endpoint: get("AWS_ENDPOINT_URL_S3").or_else(|| get("AWS_ENDPOINT_URL")),
            region: get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")),
            access_key_id: get("AWS_ACCESS_KEY_ID"),
            secret_access_key: get("AWS_SECRET_ACCESS_KEY"),
            session_token: get("AWS_SESSION_TOKEN"),
        }
    }

    /// An S3 store on `bucket`. Commits rely on conditional put
    /// (`If-None-Match: *`), so two writers can never both create the same
    /// `_delta_log/N.json`; a non-AWS endpoint gets path-style addressing and,
    /// when it is plain `http://`, HTTP is allowed.
    pub fn build_store(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>> {
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(
                self.region
                    .clone()
                    .unwrap_or_else(|| "us-east-1".to_owned()),
            )
            .with_conditional_put(S3ConditionalPut::ETagMatch);
        if let Some(endpoint) = &self.endpoint {
            b = b
                .with_endpoint(endpoint.trim_end_matches('/'))
                .with_virtual_hosted_style_request(false)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some(v) = &self.access_key_id {
            b = b.with_access_key_id(v);
        }
        if let Some(v) = &self.secret_access_key {
            b = b.with_secret_access_key(v);
        }
        if let Some(v) = &self.session_token {
            b = b.with_token(v);
        }
        let store = b.build().map_err(|e| LakeError::BadUrl {
            url: format!("s3://{bucket}"),
            reason: format!("S3 configuration: {e}"),
        })?;
        Ok(Arc::new(store))
    }
}

/// The lake root: where tables live and the store that reaches them.
#[derive(Clone)]
pub struct LakeLocation {
    /// URL of the root, ending in `/` (`file:///srv/lake/`, `s3://bucket/prefix/`).
    root: Url,
    /// A store whose `/` is the root of the bucket (S3) or of the file system.
    store: Option<Arc<dyn ObjectStore>>,
}

impl std::fmt::Debug for LakeLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LakeLocation")
            .field("root", &self.root.as_str())
            .finish()
    }
}

impl LakeLocation {
    /// A lake from `AULA_LAKE_URL` (a folder path, `file://…` or
    /// `s3://bucket/prefix`), S3 settings from the environment.
    pub fn from_env() -> Result<Self> {
        let url = std::env::var("AULA_LAKE_URL").map_err(|_| LakeError::BadUrl {
            url: String::new(),
            reason: "AULA_LAKE_URL is not set".to_owned(),
        })?;
        Self::parse(&url, &S3Settings::from_env())
    }

    /// A lake at `url`: a local folder (created if missing) or `s3://bucket/prefix`.
    pub fn parse(url: &str, s3: &S3Settings) -> Result<Self> {
        let bad = |reason: String| LakeError::BadUrl {
            url: url.to_owned(),
            reason,
        };
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, _) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("no bucket in s3:// URL".to_owned()));
            }
            let store = s3.build_store(bucket)?;
            return Self::with_s3_store(url, store);
        }
        let path = match url.strip_prefix("file://") {
            Some(p) => std::path::PathBuf::from(p),
            None if url.contains("://") => {
                return Err(bad(
                    "only local folders, file:// and s3:// are supported".to_owned()
                ));
            }
            None => std::path::PathBuf::from(url),
        };
        std::fs::create_dir_all(&path)
            .map_err(|e| bad(format!("cannot create the folder: {e}")))?;
        let path = path
            .canonicalize()
            .map_err(|e| bad(format!("cannot resolve the folder: {e}")))?;
        let root = Url::from_directory_path(&path)
            .map_err(|()| bad("not an absolute folder path".to_owned()))?;
        Ok(LakeLocation { root, store: None })
    }

    /// An S3 lake at `s3://bucket/prefix` on a store built by the caller
    /// (whose `/` is the bucket root). The store must implement conditional
    /// put (`S3ConditionalPut::ETagMatch`): Delta commits depend on it.
    pub fn with_s3_store(url: &str, store: Arc<dyn ObjectStore>) -> Result<Self> {
        let bad = |reason: &str| LakeError::BadUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let mut root = Url::parse(url).map_err(|_| bad("not a URL"))?;
        if root.scheme() != "s3" || root.host_str().is_none_or(str::is_empty) {
            return Err(bad("expected s3://bucket/prefix"));
        }
        if !root.path().ends_with('/') {
            let p = format!("{}/", root.path());
            root.set_path(&p);
        }
        register_s3_logstore();
        Ok(LakeLocation {
            root,
            store: Some(store),
        })
    }

    /// The root URL (ending in `/`).
    pub fn root(&self) -> &Url {
        &self.root
    }

    /// Whether the lake is on S3.
    pub fn is_s3(&self) -> bool {
        self.root.scheme() == "s3"
    }

    /// The URL of a table's folder (`<root>/raw/crm_leads`).
    pub fn table_url(&self, name: &TableName) -> Url {
        // Both parts are validated identifiers: joining cannot escape the root.
        let mut url = self.root.clone();
        let path = format!("{}{}", self.root.path(), name.relative_path());
        url.set_path(&path);
        url
    }

    /// The store for S3 lakes (bucket root); `None` for local folders, where
    /// the Delta library opens the file system itself.
    pub(crate) fn custom_store(&self) -> Option<Arc<dyn ObjectStore>> {
        self.store.clone()
    }

    /// A store rooted at the bucket (S3) or the file-system root (local),
    /// plus the path of the lake root inside it; used to list tables.
    pub(crate) fn listing_store(&self) -> Result<(Arc<dyn ObjectStore>, object_store::path::Path)> {
        match &self.store {
            Some(store) => {
                let prefix = object_store::path::Path::from(self.root.path().trim_matches('/'));
                Ok((store.clone(), prefix))
            }
            None => {
                let fs = object_store::local::LocalFileSystem::new();
                let path = self.root.to_file_path().map_err(|()| LakeError::BadUrl {
                    url: self.root.to_string(),
                    reason: "not a local path".to_owned(),
                })?;
                let prefix = object_store::path::Path::from_absolute_path(&path).map_err(|e| {
                    LakeError::BadUrl {
                        url: self.root.to_string(),
                        reason: e.to_string(),
                    }
                })?;
                Ok((Arc::new(fs), prefix))
            }
        }
    }
}

/// Log store factory for `s3://`: the library's default log store, which
/// writes `_delta_log/N.json` with `PutMode::Create` (a conditional put,
/// `If-None-Match: *`). It never renames, so two writers racing for version
/// N cannot both win: the loser gets `VersionAlreadyExists` and retries on
/// top of the winner's commit.
#[derive(Debug, Default)]
struct ConditionalPutLogStoreFactory;

impl LogStoreFactory for ConditionalPutLogStoreFactory {
    fn with_options(
        &self,
        prefixed_store: Arc<dyn ObjectStore>,
        root_store: Arc<dyn ObjectStore>,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

fn register_s3_logstore() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Ok(scheme) = Url::parse("s3://") {
            logstore_factories().insert(scheme, Arc::new(ConditionalPutLogStoreFactory));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_map_to_paths_and_reject_junk() {
        let n = TableName::parse("raw.crm_leads").expect("valid");
        assert_eq!(n.relative_path(), "raw/crm_leads");
        assert_eq!(n.to_string(), "raw.crm_leads");
        for bad in [
            "raw",
            "raw.",
            ".x",
            "Raw.x",
            "raw.x.y",
            "raw/../x.y",
            "1a.b",
            "a.b-c",
        ] {
            assert!(TableName::parse(bad).is_err(), "{bad} must be rejected");
        }
    }

    #[test]
    fn s3_urls_keep_bucket_and_prefix() {
        let s3 = S3Settings {
            endpoint: Some("http://127.0.0.1:5000".into()),
            ..Default::default()
        };
        let loc = LakeLocation::parse("s3://bucket/some/prefix", &s3).expect("valid");
        let n = TableName::parse("raw.crm_leads").expect("valid");
        assert_eq!(
            loc.table_url(&n).as_str(),
            "s3://bucket/some/prefix/raw/crm_leads"
        );
        let debug = format!(
            "{:?}",
            S3Settings {
                secret_access_key: Some("hunter2".into()),
                ..s3
            }
        );
        assert!(!debug.contains("hunter2"));
    }
}
