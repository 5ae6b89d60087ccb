//! Superset and Metabase assets as code, and their provisioning.
//!
//! Empty for now: no issue has asked for dashboards yet. The marts they will
//! read are in ClickHouse database `marts` (see `pipelines/crm_nightly.yaml`).
