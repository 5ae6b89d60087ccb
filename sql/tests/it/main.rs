//! Integration tests of the SQL layer: the shipped models over a hand-checkable
//! fixture, and the data-quality checks.

mod checks;
mod fixture;
mod marts;
