//! Integration tests of the data task kinds.

mod pipelines;
